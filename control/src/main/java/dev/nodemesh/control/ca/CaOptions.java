package dev.nodemesh.control.ca;

import java.util.List;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * The CA part of a control plane's start-up settings.
 *
 * @param authority signs workload certificates (and the serving certificate)
 * @param authenticator tells which node a request comes from
 * @param tlsSans when not empty, the gRPC server (xDS and CA) serves TLS with a certificate for
 *     these DNS names / IPs issued by {@code authority}; empty keeps it plaintext
 * @param publisher when given, publishes the trust bundle for the proxies (a ConfigMap on a
 *     cluster) at start, which fails if it cannot, and keeps it current
 */
public record CaOptions(
    CertificateAuthority authority,
    NodeAuthenticator authenticator,
    List<String> tlsSans,
    @Nullable TrustBundlePublisher publisher) {
  public CaOptions {
    Objects.requireNonNull(authority, "authority");
    Objects.requireNonNull(authenticator, "authenticator");
    tlsSans = List.copyOf(tlsSans);
  }

  /** Nothing published: local mode, where the proxies read the root from the CA's directory. */
  public CaOptions(
      CertificateAuthority authority, NodeAuthenticator authenticator, List<String> tlsSans) {
    this(authority, authenticator, tlsSans, null);
  }
}
