package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.l7.resilience.RateLimiter;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import org.jspecify.annotations.Nullable;

/**
 * The rate-limit layer: takes a token from the backend Service's local rate limit (its bucket, or
 * the caller's own when the policy limits per source) before anything else is spent on a request. A
 * refused request gets 429 with {@code retry-after} and flag RL from the exchange.
 */
final class LocalRateLimit {
  private LocalRateLimit() {}

  /**
   * 0 when the request may go on, else the whole seconds (at least 1) the caller should wait, the
   * refusal counted in {@code nodemesh_http_rate_limited_total}.
   *
   * @param client the caller's workload, null when not in config
   */
  static long retryAfterSeconds(
      ServiceTraffic st, @Nullable Workload client, EnrolledPod source, String trustDomain) {
    RateLimiter limiter = st.rateLimiter();
    if (limiter == null) {
      return 0;
    }
    long wait = limiter.acquire(sourceIdentity(client, source, trustDomain));
    if (wait == 0) {
      return 0;
    }
    st.meters().rateLimited().increment();
    return Math.max(1, (wait + 999_999_999L) / 1_000_000_000L);
  }

  /** The caller's identity for per-source limits: its SPIFFE ID, else namespace/pod. */
  static String sourceIdentity(@Nullable Workload w, EnrolledPod source, String trustDomain) {
    if (w != null) {
      return "spiffe://" + trustDomain + "/ns/" + w.namespace() + "/sa/" + w.serviceAccount();
    }
    return source.namespace() + "/" + source.name();
  }
}
