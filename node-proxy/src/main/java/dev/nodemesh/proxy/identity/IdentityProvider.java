package dev.nodemesh.proxy.identity;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.concurrent.CompletionStage;

/**
 * Where the proxy gets workload certificates. The tunnel asks for the current certificate of an
 * identity each time it opens a TLS connection, so a rotated certificate is used from the next
 * connection on and open connections are left alone.
 */
public interface IdentityProvider {

  /**
   * The current certificate of {@code id}: completed at once when one is held, otherwise when the
   * CA has answered (or exceptionally, naming why not). Never blocks the caller.
   */
  CompletionStage<WorkloadCertificate> certificate(SpiffeId id);

  /** The roots a peer's chain must lead to. */
  List<X509Certificate> trustAnchors();
}
