package dev.nodemesh.control.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import dev.nodemesh.api.ca.v1.WorkloadRef;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.proxy.identity.GrpcCertificateSigner;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.nio.file.Path;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The certificate service over an in-process gRPC server, called through the node proxy's own
 * client ({@link GrpcCertificateSigner}), with bootstrap tokens for two nodes.
 */
class CertificateServiceTest {
  @TempDir Path dir;

  private final PrometheusMeterRegistry registry =
      new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
  private final Map<String, Workload> workloads =
      Map.of(
          "shop/checkout-1", workload("shop", "checkout-1", "uid-c1", "checkout", "node-1"),
          "shop/cart-1", workload("shop", "cart-1", "uid-a1", "", "node-1"),
          "shop/payments-1", workload("shop", "payments-1", "uid-p1", "payments", "node-2"));
  private CertificateAuthority ca;
  private CaMetrics metrics;
  private Map<String, String> tokens;
  private Server server;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")), CaSettings.defaults(), Clock.systemUTC());
    tokens = BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1", "node-2"));
    metrics = new CaMetrics(registry, ca);
    CertificateService service =
        new CertificateService(
            ca,
            BootstrapTokens.load(dir.resolve("tokens")),
            (ns, name) -> workloads.get(ns + "/" + name),
            metrics);
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .directExecutor()
            .addService(service.definition())
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }

  @Test
  void aNodeGetsACertificateForItsOwnWorkload() throws Exception {
    KeyPair pair = TestCerts.ec();
    CreateCertificateResponse r = call(tokens.get("node-1"), request(pair, "checkout-1", "uid-c1"));

    List<X509Certificate> chain = chain(r);
    assertEquals(pair.getPublic(), chain.get(0).getPublicKey());
    assertEquals(
        "spiffe://cluster.local/ns/shop/sa/checkout",
        chain.get(0).getSubjectAlternativeNames().iterator().next().get(1));
    List<X509Certificate> bundle = new ArrayList<>();
    for (String pem : r.getTrustBundleList()) {
      bundle.addAll(Pem.certificates(pem));
    }
    assertEquals(ca.trustBundle(), bundle);
    TestCerts.validate(chain, bundle, java.time.Instant.now());
    assertEquals(1, metrics.issuedCount());
  }

  @Test
  void aWorkloadWithoutServiceAccountIsTheDefaultOne() throws Exception {
    CreateCertificateResponse r =
        call(tokens.get("node-1"), request(TestCerts.ec(), "cart-1", "uid-a1"));
    assertEquals(
        "spiffe://cluster.local/ns/shop/sa/default",
        chain(r).get(0).getSubjectAlternativeNames().iterator().next().get(1));
  }

  @Test
  void aNodeAskingForAnotherNodesWorkloadIsDeniedAndCounted() throws Exception {
    Status s = failure(tokens.get("node-1"), request(TestCerts.ec(), "payments-1", "uid-p1"));
    assertEquals(Status.Code.PERMISSION_DENIED, s.getCode());
    assertEquals(1, metrics.refusedCount(Refusal.OTHER_NODE));
    assertEquals(0, metrics.issuedCount());
    assertTrue(
        registry
            .scrape()
            .contains("nodemesh_ca_certificates_refused_total{reason=\"other_node\"} 1.0"),
        registry.scrape());
    // node-2 may have it.
    call(tokens.get("node-2"), request(TestCerts.ec(), "payments-1", "uid-p1"));
    assertEquals(1, metrics.issuedCount());
  }

  @Test
  void aBadOrMissingTokenIsUnauthenticated() throws Exception {
    CreateCertificateRequest req = request(TestCerts.ec(), "checkout-1", "uid-c1");
    assertEquals(Status.Code.UNAUTHENTICATED, failure("not-a-token-of-any-node", req).getCode());
    assertEquals(Status.Code.UNAUTHENTICATED, failure("", req).getCode());
    assertEquals(2, metrics.refusedCount(Refusal.UNAUTHENTICATED));
    assertEquals(0, metrics.issuedCount());
  }

  @Test
  void anUnknownOrReplacedWorkloadIsDenied() throws Exception {
    String t = tokens.get("node-1");
    assertEquals(
        Status.Code.PERMISSION_DENIED,
        failure(t, request(TestCerts.ec(), "nobody", "x")).getCode());
    assertEquals(
        Status.Code.PERMISSION_DENIED,
        failure(t, request(TestCerts.ec(), "checkout-1", "uid-of-an-earlier-pod")).getCode());
    assertEquals(1, metrics.refusedCount(Refusal.UNKNOWN_WORKLOAD));
    assertEquals(1, metrics.refusedCount(Refusal.UID_MISMATCH));
  }

  @Test
  void aForgedCsrIsInvalid() throws Exception {
    CreateCertificateRequest req =
        request(TestCerts.ec(), "checkout-1", "uid-c1").toBuilder()
            .setCsr(Pem.encode(TestCerts.forgedCsr(TestCerts.ec().getPublic())))
            .build();
    assertEquals(Status.Code.INVALID_ARGUMENT, failure(tokens.get("node-1"), req).getCode());
    assertEquals(1, metrics.refusedCount(Refusal.BAD_CSR));
  }

  @Test
  void rootExpiryIsExposed() {
    String scrape = registry.scrape();
    assertTrue(scrape.contains("# TYPE nodemesh_ca_root_expiry_timestamp_seconds gauge"), scrape);
    assertTrue(scrape.contains("# TYPE nodemesh_ca_certificates_issued_total counter"), scrape);
    assertEquals(
        List.of(), dev.nodemesh.proxy.metrics.PrometheusConventions.nameProblems(scrape), scrape);
    assertEquals(
        (double) ca.rootNotAfter().getEpochSecond(),
        registry.get("nodemesh.ca.root.expiry.timestamp").gauge().value());
  }

  private static Workload workload(String ns, String name, String uid, String sa, String node) {
    return Workload.newBuilder()
        .setNamespace(ns)
        .setName(name)
        .setUid(uid)
        .setServiceAccount(sa)
        .setNode(node)
        .addIps("10.0.0.1")
        .build();
  }

  private static CreateCertificateRequest request(KeyPair pair, String name, String uid)
      throws Exception {
    return CreateCertificateRequest.newBuilder()
        .setCsr(Pem.encode(TestCerts.csr(pair, "")))
        .setWorkload(WorkloadRef.newBuilder().setNamespace("shop").setName(name).setUid(uid))
        .setTtl(
            com.google.protobuf.Duration.newBuilder().setSeconds(Duration.ofHours(1).toSeconds()))
        .build();
  }

  private CreateCertificateResponse call(String token, CreateCertificateRequest req)
      throws Exception {
    return new GrpcCertificateSigner(channel, () -> token)
        .sign(req)
        .toCompletableFuture()
        .get(10, TimeUnit.SECONDS);
  }

  private Status failure(String token, CreateCertificateRequest req) throws Exception {
    try {
      call(token, req);
    } catch (ExecutionException e) {
      return Status.fromThrowable(e.getCause());
    }
    throw new AssertionError("expected a refusal");
  }

  private static List<X509Certificate> chain(CreateCertificateResponse r) throws Exception {
    List<X509Certificate> chain = new ArrayList<>();
    for (String pem : r.getCertChainList()) {
      chain.addAll(Pem.certificates(pem));
    }
    return chain;
  }
}
