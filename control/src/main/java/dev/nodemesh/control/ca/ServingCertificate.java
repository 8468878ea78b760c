package dev.nodemesh.control.ca;

import io.grpc.ServerCredentials;
import io.grpc.TlsServerCredentials;
import io.grpc.util.AdvancedTlsX509KeyManager;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The control plane's own TLS identity for its gRPC server (xDS and the CA): a key pair made here
 * and a certificate its CA issues with the configured SANs, renewed at half its lifetime. The key
 * manager is swapped in place, so renewals reach new connections while open streams stay up.
 * Proxies verify it against the CA's root ({@code nodemesh proxy --ca-root}).
 */
public final class ServingCertificate implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ServingCertificate.class);

  private final CertificateAuthority ca;
  private final List<String> sans;
  private final Duration ttl;
  private final ScheduledExecutorService scheduler;
  private final AdvancedTlsX509KeyManager keyManager = new AdvancedTlsX509KeyManager();
  private volatile @Nullable ScheduledFuture<?> renewal;
  private volatile X509Certificate current;

  private ServingCertificate(
      CertificateAuthority ca,
      List<String> sans,
      Duration ttl,
      ScheduledExecutorService scheduler) {
    this.ca = ca;
    this.sans = List.copyOf(sans);
    this.ttl = ttl;
    this.scheduler = scheduler;
    this.current = renew();
  }

  /** Issues the first certificate now and schedules renewals on {@code scheduler}. */
  public static ServingCertificate start(
      CertificateAuthority ca,
      List<String> sans,
      Duration ttl,
      ScheduledExecutorService scheduler) {
    ServingCertificate s = new ServingCertificate(ca, sans, ttl, scheduler);
    s.schedule();
    return s;
  }

  private X509Certificate renew() {
    KeyPair pair;
    try {
      pair = CertificateAuthority.ecKeyPair();
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("EC P-256 is in every JDK", e);
    }
    List<X509Certificate> chain = ca.issueServing(pair.getPublic(), sans, ttl);
    keyManager.updateIdentityCredentials(chain.toArray(X509Certificate[]::new), pair.getPrivate());
    log.info(
        "control plane TLS: serving certificate for {} until {}",
        sans,
        chain.get(0).getNotAfter().toInstant());
    return chain.get(0);
  }

  private void schedule() {
    long lifetime =
        current.getNotAfter().getTime() - System.currentTimeMillis(); // wall time, like TLS peers
    long delay = Math.max(TimeUnit.SECONDS.toMillis(1), lifetime / 2);
    renewal =
        scheduler.schedule(
            () -> {
              try {
                current = renew();
              } catch (RuntimeException e) {
                log.warn("control plane TLS: renewal failed, retrying: {}", e.toString());
              }
              schedule();
            },
            delay,
            TimeUnit.MILLISECONDS);
  }

  public ServerCredentials credentials() {
    return TlsServerCredentials.newBuilder().keyManager(keyManager).build();
  }

  public X509Certificate current() {
    return current;
  }

  @Override
  public void close() {
    ScheduledFuture<?> r = renewal;
    if (r != null) {
      r.cancel(false);
    }
  }
}
