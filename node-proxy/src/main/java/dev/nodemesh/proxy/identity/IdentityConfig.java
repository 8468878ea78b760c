package dev.nodemesh.proxy.identity;

import java.nio.file.Path;
import java.time.Duration;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * How the node proxy gets workload certificates.
 *
 * @param caTarget the CA's gRPC target ({@code host:port}); null means the xDS target (the control
 *     plane serves both on one port)
 * @param tokenFile the node's token: the bootstrap token in local mode, the (projected)
 *     service-account token on Kubernetes; re-read on every request
 * @param trustDomain of the SPIFFE IDs this node asks for ({@code cluster.local})
 * @param certTtl lifetime asked for; zero leaves it to the CA
 * @param plaintextToken send the token over a connection without TLS too ({@code
 *     --insecure-plaintext-token}); otherwise such a start is refused and such a call fails
 */
public record IdentityConfig(
    @Nullable String caTarget,
    Path tokenFile,
    String trustDomain,
    Duration certTtl,
    boolean plaintextToken) {
  public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";

  /** The token over TLS only. */
  public IdentityConfig(
      @Nullable String caTarget, Path tokenFile, String trustDomain, Duration certTtl) {
    this(caTarget, tokenFile, trustDomain, certTtl, false);
  }

  public IdentityConfig {
    Objects.requireNonNull(tokenFile, "tokenFile");
    Objects.requireNonNull(trustDomain, "trustDomain");
    Objects.requireNonNull(certTtl, "certTtl");
  }
}
