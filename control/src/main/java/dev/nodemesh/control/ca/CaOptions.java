package dev.nodemesh.control.ca;

import java.util.List;
import java.util.Objects;

/**
 * The CA part of a control plane's start-up settings.
 *
 * @param authority signs workload certificates (and the serving certificate)
 * @param authenticator tells which node a request comes from
 * @param tlsSans when not empty, the gRPC server (xDS and CA) serves TLS with a certificate for
 *     these DNS names / IPs issued by {@code authority}; empty keeps it plaintext
 */
public record CaOptions(
    CertificateAuthority authority, NodeAuthenticator authenticator, List<String> tlsSans) {
  public CaOptions {
    Objects.requireNonNull(authority, "authority");
    Objects.requireNonNull(authenticator, "authenticator");
    tlsSans = List.copyOf(tlsSans);
  }
}
