package dev.nodemesh.proxy.identity;

import com.google.protobuf.Duration;
import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import dev.nodemesh.api.ca.v1.WorkloadRef;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.xds.Backoff;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.CertificateParsingException;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.Date;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.DoubleSupplier;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.pkcs.PKCSObjectIdentifiers;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.ExtensionsGenerator;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's {@link IdentityProvider}: one workload certificate per SPIFFE ID that a pod on this
 * node has. For each it makes an EC P-256 key pair here, sends the CA only a PKCS#10 CSR naming one
 * of this node's pods with that identity (the CA derives the identity itself), keeps the answer,
 * and renews it at 45-55 % of its remaining lifetime (jittered, so a node's certificates and a
 * cluster's nodes do not all renew at once). A failed request is retried with exponential backoff
 * (1 s to 60 s, jittered) while the previous certificate, if still valid, keeps serving.
 *
 * <p>It follows the config: identities of pods newly placed on this node are fetched ahead of the
 * first connection, and those no pod here has any more are dropped. {@link #certificate} never
 * blocks: a held certificate is returned completed, otherwise the caller gets a stage completed by
 * the CA's answer.
 *
 * <p>Threads: every state change runs on the injected {@link TaskScheduler} (one thread, {@code
 * nodemesh-identity} in production); {@link #certificate} reads a concurrent map of the current
 * certificates and only hops onto the scheduler when it has to wait. The clock and the scheduler
 * are injected so tests drive rotations with fake time.
 */
public final class CertificateManager implements IdentityProvider, AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(CertificateManager.class);
  private static final double RENEW_AT = 0.5;
  private static final double RENEW_JITTER = 0.05;
  private static final long RETRY_INITIAL_NANOS = TimeUnit.SECONDS.toNanos(1);
  private static final long RETRY_MAX_NANOS = TimeUnit.SECONDS.toNanos(60);

  private final String nodeName;
  private final String trustDomain;
  private final java.time.Duration requestedTtl;
  private final CertificateSigner signer;
  private final TaskScheduler scheduler;
  private final Clock clock;
  private final DoubleSupplier random;
  private final Counter rotations;
  private final Counter failures;

  /** Read from any thread; written on the scheduler only. */
  private final Map<SpiffeId, WorkloadCertificate> current = new ConcurrentHashMap<>();

  private volatile List<X509Certificate> trustAnchors = List.of();

  // Scheduler-confined.
  private final Map<SpiffeId, Held> held = new HashMap<>();
  private @Nullable ConfigSnapshot lastSnapshot;
  private TaskScheduler.@Nullable Cancellable follower;
  private boolean closed;

  /**
   * @param requestedTtl the lifetime asked for; zero leaves it to the CA's default
   * @param random values in [0, 1) for the jitter of renewals and retries
   */
  public CertificateManager(
      String nodeName,
      String trustDomain,
      java.time.Duration requestedTtl,
      CertificateSigner signer,
      TaskScheduler scheduler,
      Clock clock,
      DoubleSupplier random,
      MeterRegistry registry) {
    this.nodeName = nodeName;
    this.trustDomain = trustDomain;
    this.requestedTtl = requestedTtl;
    this.signer = signer;
    this.scheduler = scheduler;
    this.clock = clock;
    this.random = random;
    this.rotations =
        Counter.builder("nodemesh.certificate.rotations")
            .description("Workload certificates replaced by a renewed one")
            .register(registry);
    this.failures =
        Counter.builder("nodemesh.certificate.failures")
            .description("Certificate requests that failed (retried with backoff)")
            .register(registry);
    Gauge.builder("nodemesh.certificate.expiry", this::secondsToEarliestExpiry)
        .description("Time until the earliest held workload certificate expires (NaN: none)")
        .baseUnit("seconds")
        .register(registry);
    Gauge.builder("nodemesh.certificates.held", current::size)
        .description("Workload certificates (SPIFFE IDs) this node holds")
        .register(registry);
  }

  @Override
  public CompletionStage<WorkloadCertificate> certificate(SpiffeId id) {
    WorkloadCertificate c = current.get(id);
    if (c != null && valid(c)) {
      return CompletableFuture.completedFuture(c);
    }
    CompletableFuture<WorkloadCertificate> result = new CompletableFuture<>();
    scheduler.execute(() -> await(id, result));
    return result;
  }

  @Override
  public List<X509Certificate> trustAnchors() {
    return trustAnchors;
  }

  /** The certificates held now, earliest expiry first (for /config_dump; no keys). */
  public List<HeldCertificate> held() {
    List<HeldCertificate> out = new ArrayList<>();
    for (WorkloadCertificate c : current.values()) {
      out.add(new HeldCertificate(c.id(), c.leaf().getSerialNumber().toString(16), c.notAfter()));
    }
    out.sort(Comparator.comparing(HeldCertificate::notAfter));
    return out;
  }

  /** Checks {@code snapshots} every {@code period} and follows it when it changed. */
  public void follow(SnapshotHolder snapshots, java.time.Duration period) {
    scheduler.execute(
        () -> {
          if (closed) {
            return;
          }
          ConfigSnapshot s = snapshots.current();
          if (s != lastSnapshot) {
            apply(s);
          }
          follower = scheduler.schedule(() -> follow(snapshots, period), period);
        });
  }

  /** Fetches identities of this node's pods in {@code snapshot}, drops those no pod has. */
  public void onSnapshot(ConfigSnapshot snapshot) {
    scheduler.execute(() -> apply(snapshot));
  }

  private void apply(ConfigSnapshot snapshot) {
    if (closed) {
      return;
    }
    lastSnapshot = snapshot;
    Map<SpiffeId, List<Workload>> wanted = new LinkedHashMap<>();
    for (Workload w : snapshot.workloads()) {
      if (w.nodeName().equals(nodeName)) {
        wanted.computeIfAbsent(SpiffeId.of(trustDomain, w), k -> new ArrayList<>()).add(w);
      }
    }
    for (Held h : new ArrayList<>(held.values())) {
      if (!wanted.containsKey(h.id)) {
        drop(h, "no pod on this node has it any more");
      }
    }
    for (Map.Entry<SpiffeId, List<Workload>> e : wanted.entrySet()) {
      Held h = held.get(e.getKey());
      if (h == null) {
        h = new Held(e.getKey(), e.getValue().get(0));
        held.put(h.id, h);
        fetch(h);
      } else if (!contains(e.getValue(), h.workload)) {
        h.workload = e.getValue().get(0); // the pod asked about left; another has the identity
      }
    }
  }

  private static boolean contains(Collection<Workload> workloads, Workload w) {
    for (Workload x : workloads) {
      if (x.uid().equals(w.uid())) {
        return true;
      }
    }
    return false;
  }

  private void await(SpiffeId id, CompletableFuture<WorkloadCertificate> result) {
    if (closed) {
      result.completeExceptionally(new IllegalStateException("certificate manager closed"));
      return;
    }
    Held h = held.get(id);
    if (h == null) {
      Workload w = lastSnapshot == null ? null : workloadWith(lastSnapshot, id);
      if (w == null) {
        result.completeExceptionally(
            new IllegalStateException("no pod on node " + nodeName + " has identity " + id));
        return;
      }
      h = new Held(id, w);
      held.put(id, h);
    }
    if (h.cert != null && valid(h.cert)) {
      result.complete(h.cert);
      return;
    }
    h.waiters.add(result);
    if (!h.inFlight && h.timer == null) {
      fetch(h);
    }
  }

  private @Nullable Workload workloadWith(ConfigSnapshot snapshot, SpiffeId id) {
    for (Workload w : snapshot.workloads()) {
      if (w.nodeName().equals(nodeName) && SpiffeId.of(trustDomain, w).equals(id)) {
        return w;
      }
    }
    return null;
  }

  private void fetch(Held h) {
    cancelTimer(h);
    h.inFlight = true;
    KeyPair pair;
    CreateCertificateRequest request;
    try {
      pair = newKeyPair();
      request = request(h, pair);
    } catch (GeneralSecurityException | OperatorCreationException | java.io.IOException e) {
      h.inFlight = false;
      failed(h, e);
      return;
    }
    CompletionStage<CreateCertificateResponse> answer;
    try {
      answer = signer.sign(request);
    } catch (RuntimeException e) {
      answer = CompletableFuture.failedFuture(e);
    }
    answer.whenComplete(
        (response, error) -> scheduler.execute(() -> answered(h, pair, response, error)));
  }

  private CreateCertificateRequest request(Held h, KeyPair pair)
      throws OperatorCreationException, java.io.IOException {
    // The SAN in the CSR is a courtesy for humans reading it; the CA ignores it.
    ExtensionsGenerator ext = new ExtensionsGenerator();
    ext.addExtension(
        Extension.subjectAlternativeName,
        true,
        new GeneralNames(new GeneralName(GeneralName.uniformResourceIdentifier, h.id.toString())));
    PKCS10CertificationRequest csr =
        new JcaPKCS10CertificationRequestBuilder(new X500Principal(""), pair.getPublic())
            .addAttribute(PKCSObjectIdentifiers.pkcs_9_at_extensionRequest, ext.generate())
            .build(new JcaContentSignerBuilder("SHA256withECDSA").build(pair.getPrivate()));
    CreateCertificateRequest.Builder b =
        CreateCertificateRequest.newBuilder()
            .setCsr(Pem.encode(csr))
            .setWorkload(
                WorkloadRef.newBuilder()
                    .setUid(h.workload.uid())
                    .setNamespace(h.workload.namespace())
                    .setName(h.workload.name()));
    if (!requestedTtl.isZero()) {
      b.setTtl(
          Duration.newBuilder()
              .setSeconds(requestedTtl.getSeconds())
              .setNanos(requestedTtl.getNano()));
    }
    return b.build();
  }

  private void answered(
      Held h,
      KeyPair pair,
      @Nullable CreateCertificateResponse response,
      @Nullable Throwable error) {
    if (held.get(h.id) != h || closed) {
      return; // dropped meanwhile
    }
    h.inFlight = false;
    if (error != null || response == null) {
      failed(h, error == null ? new IllegalStateException("no answer") : error);
      return;
    }
    WorkloadCertificate next;
    try {
      next = accept(h.id, pair, response);
    } catch (GeneralSecurityException e) {
      failed(h, e);
      return;
    }
    WorkloadCertificate previous = h.cert;
    h.cert = next;
    h.backoff.reset();
    current.put(h.id, next);
    trustAnchors = next.trustAnchors();
    if (previous != null) {
      rotations.increment();
    }
    log.info(
        "certificate for {}: serial {} until {}{}",
        h.id,
        next.leaf().getSerialNumber().toString(16),
        next.notAfter(),
        previous == null ? "" : " (rotated)");
    for (CompletableFuture<WorkloadCertificate> w : h.waiters) {
      w.complete(next);
    }
    h.waiters.clear();
    long remaining = next.notAfter().toEpochMilli() - clock.millis();
    double fraction = RENEW_AT - RENEW_JITTER + 2 * RENEW_JITTER * random.getAsDouble();
    long delay = Math.max(0, (long) (remaining * fraction));
    h.timer = scheduler.schedule(() -> renew(h), java.time.Duration.ofMillis(delay));
  }

  private void renew(Held h) {
    h.timer = null;
    if (held.get(h.id) == h && !closed && !h.inFlight) {
      fetch(h);
    }
  }

  private void failed(Held h, Throwable error) {
    failures.increment();
    long delay = h.backoff.nextDelayNanos();
    log.warn(
        "certificate for {} (pod {}/{}): request failed, retrying in {} ms: {}",
        h.id,
        h.workload.namespace(),
        h.workload.name(),
        TimeUnit.NANOSECONDS.toMillis(delay),
        error.toString());
    if (h.cert == null || !valid(h.cert)) {
      for (CompletableFuture<WorkloadCertificate> w : h.waiters) {
        w.completeExceptionally(error);
      }
      h.waiters.clear();
    }
    h.timer = scheduler.schedule(() -> renew(h), java.time.Duration.ofNanos(delay));
  }

  /** Parses and checks the CA's answer: our key, the identity asked for, a chain to the bundle. */
  private WorkloadCertificate accept(SpiffeId id, KeyPair pair, CreateCertificateResponse response)
      throws GeneralSecurityException {
    List<X509Certificate> chain = new ArrayList<>();
    for (String pem : response.getCertChainList()) {
      chain.addAll(Pem.certificates(pem));
    }
    List<X509Certificate> bundle = new ArrayList<>();
    for (String pem : response.getTrustBundleList()) {
      bundle.addAll(Pem.certificates(pem));
    }
    if (chain.isEmpty() || bundle.isEmpty()) {
      throw new GeneralSecurityException("the CA sent no chain or no trust bundle");
    }
    X509Certificate leaf = chain.get(0);
    if (!leaf.getPublicKey().equals(pair.getPublic())) {
      throw new GeneralSecurityException("the certificate is not for the key this node made");
    }
    SpiffeId issued = uriSan(leaf);
    if (!id.equals(issued)) {
      throw new GeneralSecurityException("asked for " + id + ", the CA issued " + issued);
    }
    Set<TrustAnchor> anchors = new HashSet<>();
    for (X509Certificate r : bundle) {
      anchors.add(new TrustAnchor(r, null));
    }
    PKIXParameters params = new PKIXParameters(anchors);
    params.setRevocationEnabled(false);
    params.setDate(Date.from(clock.instant()));
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(chain), params);
    return new WorkloadCertificate(id, pair.getPrivate(), chain, bundle);
  }

  static @Nullable SpiffeId uriSan(X509Certificate cert) throws CertificateParsingException {
    Collection<List<?>> sans = cert.getSubjectAlternativeNames();
    if (sans == null) {
      return null;
    }
    for (List<?> san : sans) {
      if (san.size() == 2
          && Integer.valueOf(GeneralName.uniformResourceIdentifier).equals(san.get(0))
          && san.get(1) instanceof String uri
          && uri.startsWith("spiffe://")) {
        return SpiffeId.parse(uri);
      }
    }
    return null;
  }

  private void drop(Held h, String why) {
    held.remove(h.id);
    current.remove(h.id);
    cancelTimer(h);
    for (CompletableFuture<WorkloadCertificate> w : h.waiters) {
      w.completeExceptionally(new IllegalStateException(h.id + " dropped: " + why));
    }
    h.waiters.clear();
    log.info("certificate for {} dropped: {}", h.id, why);
  }

  private static void cancelTimer(Held h) {
    TaskScheduler.Cancellable t = h.timer;
    if (t != null) {
      t.cancel();
      h.timer = null;
    }
  }

  private boolean valid(WorkloadCertificate c) {
    return clock.instant().isBefore(c.notAfter());
  }

  private double secondsToEarliestExpiry() {
    Instant earliest = null;
    for (WorkloadCertificate c : current.values()) {
      if (earliest == null || c.notAfter().isBefore(earliest)) {
        earliest = c.notAfter();
      }
    }
    return earliest == null ? Double.NaN : (earliest.toEpochMilli() - clock.millis()) / 1000.0;
  }

  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator g = KeyPairGenerator.getInstance("EC");
    g.initialize(new ECGenParameterSpec("secp256r1"));
    return g.generateKeyPair();
  }

  /** Stops renewing; pending callers fail. Runs on the scheduler. */
  @Override
  public void close() {
    scheduler.execute(
        () -> {
          closed = true;
          TaskScheduler.Cancellable f = follower;
          if (f != null) {
            f.cancel();
          }
          for (Held h : new ArrayList<>(held.values())) {
            drop(h, "closing");
          }
        });
  }

  /** One identity's state. Scheduler-confined. */
  private final class Held {
    final SpiffeId id;
    Workload workload;
    @Nullable WorkloadCertificate cert;
    final List<CompletableFuture<WorkloadCertificate>> waiters = new ArrayList<>();
    boolean inFlight;
    TaskScheduler.@Nullable Cancellable timer;
    final Backoff backoff = new Backoff(RETRY_INITIAL_NANOS, RETRY_MAX_NANOS, random);

    Held(SpiffeId id, Workload workload) {
      this.id = id;
      this.workload = workload;
    }
  }
}
