package dev.nodemesh.proxy.identity;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;

/**
 * An {@link IdentityProvider} that exists before the one it stands for: the node proxy builds its
 * data plane (and starts re-enrolling the recorded pods) before the CA client is started, because
 * starting that client (gRPC, BouncyCastle) is most of a second of class loading on two cores that
 * the re-enrolment's waiting for iptables-restore can overlap (issue 19, start to {@code /ready}).
 *
 * <p>Until {@link #set} is called a certificate request waits, as a request to a CA client that has
 * no answer yet does, and then goes to the real provider; no trust anchors are known yet (nothing
 * can have been verified against them: a TLS context is built only once a certificate arrived).
 * Limits: set once; a provider that is never set leaves every request waiting (the proxy's start
 * fails and closes instead).
 */
public final class DeferredIdentityProvider implements IdentityProvider {
  private final CompletableFuture<IdentityProvider> delegate = new CompletableFuture<>();

  /** From now on every request goes to {@code provider}, the waiting ones too. */
  public void set(IdentityProvider provider) {
    if (!delegate.complete(provider)) {
      throw new IllegalStateException("identity provider already set");
    }
  }

  @Override
  public CompletionStage<WorkloadCertificate> certificate(SpiffeId id) {
    IdentityProvider now = delegate.getNow(null);
    return now != null ? now.certificate(id) : delegate.thenCompose(p -> p.certificate(id));
  }

  @Override
  public List<X509Certificate> trustAnchors() {
    IdentityProvider now = delegate.getNow(null);
    return now == null ? List.of() : now.trustAnchors();
  }
}
