package dev.nodemesh.proxy.identity;

import dev.nodemesh.model.identity.SpiffeId;
import java.security.PrivateKey;
import java.security.cert.X509Certificate;
import java.time.Instant;
import java.util.List;
import java.util.Objects;

/**
 * One workload's X.509 SVID as the proxy presents it: the private key (made on this node, never
 * sent anywhere), the chain leaf first, and the roots peers' chains are verified against.
 */
public record WorkloadCertificate(
    SpiffeId id, PrivateKey key, List<X509Certificate> chain, List<X509Certificate> trustAnchors) {

  public WorkloadCertificate {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(key, "key");
    chain = List.copyOf(chain);
    trustAnchors = List.copyOf(trustAnchors);
    if (chain.isEmpty() || trustAnchors.isEmpty()) {
      throw new IllegalArgumentException("a workload certificate needs a chain and trust anchors");
    }
  }

  public X509Certificate leaf() {
    return chain.get(0);
  }

  public Instant notAfter() {
    return leaf().getNotAfter().toInstant();
  }
}
