package dev.nodemesh.control.ca;

import java.time.Duration;
import java.util.Objects;

/**
 * What the CA issues.
 *
 * @param trustDomain the SPIFFE trust domain of every identity it signs ({@code cluster.local})
 * @param defaultTtl a workload certificate's lifetime when the request asks for none (24 h)
 * @param maxTtl the longest lifetime a request may get; longer requests are cut to this
 */
public record CaSettings(String trustDomain, Duration defaultTtl, Duration maxTtl) {
  public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";
  public static final Duration DEFAULT_TTL = Duration.ofHours(24);

  public CaSettings {
    Objects.requireNonNull(trustDomain, "trustDomain");
    if (trustDomain.isEmpty() || trustDomain.contains("/") || trustDomain.contains(":")) {
      throw new IllegalArgumentException("bad trust domain '" + trustDomain + "'");
    }
    if (defaultTtl.isNegative() || defaultTtl.isZero() || maxTtl.compareTo(defaultTtl) < 0) {
      throw new IllegalArgumentException("need 0 < default TTL <= max TTL");
    }
  }

  /** The trust domain, the lifetime as default and as maximum. */
  public static CaSettings of(String trustDomain, Duration ttl) {
    return new CaSettings(trustDomain, ttl, ttl);
  }

  public static CaSettings defaults() {
    return of(DEFAULT_TRUST_DOMAIN, DEFAULT_TTL);
  }
}
