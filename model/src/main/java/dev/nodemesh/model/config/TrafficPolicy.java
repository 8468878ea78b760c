package dev.nodemesh.model.config;

import java.time.Duration;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * nodemesh's own {@code TrafficPolicy} ({@code traffic.nodemesh.dev/v1alpha1}): how the L7 proxy
 * treats requests to one Service, for what Gateway API has no field: load balancing, circuit
 * breaking, outlier detection, the retry budget and backoff, and local rate limiting; and how long
 * an idle L4 relay to it is kept. It targets a Service of its own namespace by name; at most one
 * policy per Service. Every section is optional and each has defaults (see the nested records), so
 * an empty section means "on, with defaults".
 *
 * @param service the targeted Service ({@code spec.targetRef}), in the policy's namespace
 * @param loadBalancer always set; {@link LoadBalancer#DEFAULT} when the section is absent
 * @param circuitBreaker null: no limits
 * @param outlierDetection null: no ejection
 * @param retry always set; {@link Retry#DEFAULT} when absent
 * @param rateLimit null: no rate limit
 * @param tcpIdleTimeout the L4 relay idle timeout of connections to the Service; null: the proxy's
 *     {@code --tcp-idle-timeout}; zero: never; at most {@link #MAX_TCP_IDLE_TIMEOUT}
 */
public record TrafficPolicy(
    String name,
    String namespace,
    String service,
    LoadBalancer loadBalancer,
    @Nullable CircuitBreaker circuitBreaker,
    @Nullable OutlierDetection outlierDetection,
    Retry retry,
    @Nullable RateLimit rateLimit,
    @Nullable Duration tcpIdleTimeout) {

  /** The API group and version of the kind. */
  public static final String API_VERSION = "traffic.nodemesh.dev/v1alpha1";

  /**
   * The longest {@code tcpIdleTimeout}: a week. Longer is no different from never ({@code 0s}) in
   * practice, and a bound keeps a uint64 on the wire from overflowing.
   */
  public static final Duration MAX_TCP_IDLE_TIMEOUT = Duration.ofHours(168);

  public TrafficPolicy {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    Objects.requireNonNull(service, "service");
    Objects.requireNonNull(loadBalancer, "loadBalancer");
    Objects.requireNonNull(retry, "retry");
    if (tcpIdleTimeout != null
        && (tcpIdleTimeout.isNegative() || tcpIdleTimeout.compareTo(MAX_TCP_IDLE_TIMEOUT) > 0)) {
      throw new IllegalArgumentException("tcpIdleTimeout out of range: " + tcpIdleTimeout);
    }
  }

  /** Without an L4 idle timeout of its own (the proxy's flag applies). */
  public TrafficPolicy(
      String name,
      String namespace,
      String service,
      LoadBalancer loadBalancer,
      @Nullable CircuitBreaker circuitBreaker,
      @Nullable OutlierDetection outlierDetection,
      Retry retry,
      @Nullable RateLimit rateLimit) {
    this(
        name,
        namespace,
        service,
        loadBalancer,
        circuitBreaker,
        outlierDetection,
        retry,
        rateLimit,
        null);
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** The Service this policy applies to. */
  public NamespacedName target() {
    return new NamespacedName(namespace, service);
  }

  /** Load-balancing algorithms. */
  public enum Algorithm {
    ROUND_ROBIN,
    RANDOM,
    /** Power of two random choices, fewer requests in flight wins. */
    LEAST_REQUEST,
    /** Consistent hashing on a header or the source IP (Ketama ring). */
    RING_HASH,
    /** Power of two choices on peak-EWMA latency times requests in flight (the default). */
    PEAK_EWMA
  }

  /**
   * @param hashHeader RING_HASH: the request header hashed (lower case); null hashes {@code
   *     hashSourceIp} or, when both are unset, the source IP
   * @param hashSourceIp RING_HASH: hash the client's IP
   * @param localityPreference prefer endpoints on the caller's node, then in its zone, then any
   */
  public record LoadBalancer(
      Algorithm algorithm,
      @Nullable String hashHeader,
      boolean hashSourceIp,
      boolean localityPreference) {
    public static final LoadBalancer DEFAULT =
        new LoadBalancer(Algorithm.PEAK_EWMA, null, false, true);

    public LoadBalancer {
      Objects.requireNonNull(algorithm, "algorithm");
    }
  }

  /**
   * Per upstream cluster (the Service, over all its endpoints and all of this proxy's event loops);
   * a request beyond a limit gets 503 with response flag {@code UO}.
   *
   * @param maxConnections upstream connections busy with a request at once
   * @param maxPendingRequests requests waiting for an upstream connection or stream
   * @param maxRequests requests in flight to the cluster
   */
  public record CircuitBreaker(int maxConnections, int maxPendingRequests, int maxRequests) {
    public static final int UNLIMITED = Integer.MAX_VALUE;
  }

  /**
   * Ejects an endpoint after consecutive failures; it returns after {@code baseEjectionTime} times
   * the number of times it was ejected (capped at {@code maxEjectionTime}). 0 disables a counter.
   *
   * @param consecutive5xx any 5xx answer from the endpoint, or a failure to reach it
   * @param consecutiveGatewayErrors 502, 503, 504 or a failure to reach it
   * @param consecutiveConnectFailures connect failures and resets before a response
   * @param maxEjectionPercent at most this share of the Service's endpoints is ejected at once
   */
  public record OutlierDetection(
      int consecutive5xx,
      int consecutiveGatewayErrors,
      int consecutiveConnectFailures,
      Duration baseEjectionTime,
      Duration maxEjectionTime,
      int maxEjectionPercent) {
    public OutlierDetection {
      Objects.requireNonNull(baseEjectionTime);
      Objects.requireNonNull(maxEjectionTime);
    }
  }

  /**
   * How the retries an HTTPRoute asks for are spent.
   *
   * @param budgetPercent retries in flight may be at most this percentage of requests in flight to
   *     the Service...
   * @param minRetryConcurrency ...or this many, whichever is larger
   * @param backoffBase first backoff; each further retry doubles it, with full jitter
   * @param backoffMax cap of the backoff
   * @param retryNonIdempotent also retry POST, PATCH and other non-idempotent methods
   */
  public record Retry(
      int budgetPercent,
      int minRetryConcurrency,
      Duration backoffBase,
      Duration backoffMax,
      boolean retryNonIdempotent) {
    public static final Retry DEFAULT =
        new Retry(20, 3, Duration.ofMillis(25), Duration.ofMillis(250), false);

    public Retry {
      Objects.requireNonNull(backoffBase);
      Objects.requireNonNull(backoffMax);
    }
  }

  /**
   * A token bucket: {@code maxTokens} to start with and at most, {@code tokensPerFill} added every
   * {@code fillInterval}. Over the limit: 429 with {@code retry-after}, response flag {@code RL}.
   *
   * @param perSource one bucket per source identity (SPIFFE ID, or namespace/workload when there is
   *     none) instead of one for the Service; at most {@code maxSources} buckets, least recently
   *     used evicted
   */
  public record RateLimit(
      long maxTokens,
      long tokensPerFill,
      Duration fillInterval,
      boolean perSource,
      int maxSources) {
    public RateLimit {
      Objects.requireNonNull(fillInterval);
    }
  }
}
