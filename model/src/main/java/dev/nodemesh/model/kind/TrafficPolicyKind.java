package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.TrafficPolicyParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.time.Duration;
import org.jspecify.annotations.Nullable;

/**
 * nodemesh's TrafficPolicy ({@code traffic.nodemesh.dev}): load balancing, circuit breaking,
 * outlier detection, retry budget and rate limiting for one Service. Unordered: the snapshot
 * indexes traffic policies by target. Not required: without its CRD the control plane only logs.
 */
public final class TrafficPolicyKind {
  private TrafficPolicyKind() {}

  public static final ResourceKind<dev.nodemesh.api.config.v1.TrafficPolicy, TrafficPolicy> WIRE =
      ResourceKind.builder(
              "TrafficPolicy",
              dev.nodemesh.api.config.v1.TrafficPolicy.class,
              dev.nodemesh.api.config.v1.TrafficPolicy.getDescriptor(),
              TrafficPolicy.class)
          .decode(TrafficPolicyKind::decode)
          .encode(TrafficPolicyKind::encode)
          .build();

  public static final YamlKind<TrafficPolicy> YAML =
      new YamlKind<>(
          "TrafficPolicy",
          YamlKind.TRAFFIC_GROUP,
          "v1alpha1",
          "trafficpolicies",
          ApiVersions.EXACT,
          false,
          (file, errors, doc, label) -> new TrafficPolicyParser(file, errors).parse(doc, label),
          WIRE,
          TrafficPolicy::id,
          YamlKind::plainName);

  /** A TrafficPolicy as its resource; every field explicit (the proto's defaults are not ours). */
  public static dev.nodemesh.api.config.v1.TrafficPolicy encode(TrafficPolicy p) {
    var b =
        dev.nodemesh.api.config.v1.TrafficPolicy.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setService(p.service());
    var lb = p.loadBalancer();
    b.setLoadBalancer(
        dev.nodemesh.api.config.v1.TrafficPolicy.LoadBalancer.newBuilder()
            .setAlgorithm(
                dev.nodemesh.api.config.v1.TrafficPolicy.Algorithm.valueOf(lb.algorithm().name()))
            .setHashHeader(lb.hashHeader() == null ? "" : lb.hashHeader())
            .setHashSourceIp(lb.hashSourceIp())
            .setLocalityPreference(lb.localityPreference()));
    var cb = p.circuitBreaker();
    if (cb != null) {
      b.setCircuitBreaker(
          dev.nodemesh.api.config.v1.TrafficPolicy.CircuitBreaker.newBuilder()
              .setMaxConnections(cb.maxConnections())
              .setMaxPendingRequests(cb.maxPendingRequests())
              .setMaxRequests(cb.maxRequests()));
    }
    var od = p.outlierDetection();
    if (od != null) {
      b.setOutlierDetection(
          dev.nodemesh.api.config.v1.TrafficPolicy.OutlierDetection.newBuilder()
              .setConsecutive5Xx(od.consecutive5xx())
              .setConsecutiveGatewayErrors(od.consecutiveGatewayErrors())
              .setConsecutiveConnectFailures(od.consecutiveConnectFailures())
              .setBaseEjectionTimeMs(od.baseEjectionTime().toMillis())
              .setMaxEjectionTimeMs(od.maxEjectionTime().toMillis())
              .setMaxEjectionPercent(od.maxEjectionPercent()));
    }
    var r = p.retry();
    b.setRetry(
        dev.nodemesh.api.config.v1.TrafficPolicy.Retry.newBuilder()
            .setBudgetPercent(r.budgetPercent())
            .setMinRetryConcurrency(r.minRetryConcurrency())
            .setBackoffBaseMs(r.backoffBase().toMillis())
            .setBackoffMaxMs(r.backoffMax().toMillis())
            .setRetryNonIdempotent(r.retryNonIdempotent()));
    var rl = p.rateLimit();
    if (rl != null) {
      b.setRateLimit(
          dev.nodemesh.api.config.v1.TrafficPolicy.RateLimit.newBuilder()
              .setMaxTokens(rl.maxTokens())
              .setTokensPerFill(rl.tokensPerFill())
              .setFillIntervalMs(rl.fillInterval().toMillis())
              .setPerSource(rl.perSource())
              .setMaxSources(rl.maxSources()));
    }
    Duration idle = p.tcpIdleTimeout();
    if (idle != null) {
      b.setTcpIdleTimeout(
          com.google.protobuf.Duration.newBuilder()
              .setSeconds(idle.getSeconds())
              .setNanos(idle.getNano()));
    }
    return b.build();
  }

  /** Same limits as {@link TrafficPolicyParser}; each bad field is named. */
  static @Nullable TrafficPolicy decode(ProtoFields f, dev.nodemesh.api.config.v1.TrafficPolicy p) {
    f.identity(p.getNamespace(), p.getName());
    if (p.getService().isEmpty()) {
      f.error("service", "is required");
    }
    TrafficPolicy.LoadBalancer lb = TrafficPolicy.LoadBalancer.DEFAULT;
    if (p.hasLoadBalancer()) {
      var l = p.getLoadBalancer();
      TrafficPolicy.Algorithm algorithm =
          switch (l.getAlgorithm()) {
            case ROUND_ROBIN -> TrafficPolicy.Algorithm.ROUND_ROBIN;
            case RANDOM -> TrafficPolicy.Algorithm.RANDOM;
            case LEAST_REQUEST -> TrafficPolicy.Algorithm.LEAST_REQUEST;
            case RING_HASH -> TrafficPolicy.Algorithm.RING_HASH;
            case PEAK_EWMA -> TrafficPolicy.Algorithm.PEAK_EWMA;
            case ALGORITHM_UNSPECIFIED, UNRECOGNIZED -> null;
          };
      if (algorithm == null) {
        f.error("load_balancer.algorithm", "unknown algorithm " + l.getAlgorithmValue());
        algorithm = TrafficPolicy.Algorithm.PEAK_EWMA;
      }
      boolean hashed = !l.getHashHeader().isEmpty() || l.getHashSourceIp();
      if (hashed && algorithm != TrafficPolicy.Algorithm.RING_HASH) {
        f.error("load_balancer", "a hash is only for algorithm RING_HASH");
      }
      if (!l.getHashHeader().isEmpty() && l.getHashSourceIp()) {
        f.error("load_balancer", "hash_header and hash_source_ip are exclusive");
      }
      lb =
          new TrafficPolicy.LoadBalancer(
              algorithm,
              l.getHashHeader().isEmpty() ? null : l.getHashHeader(),
              l.getHashSourceIp(),
              l.getLocalityPreference());
    }
    TrafficPolicy.CircuitBreaker cb = null;
    if (p.hasCircuitBreaker()) {
      var c = p.getCircuitBreaker();
      cb =
          new TrafficPolicy.CircuitBreaker(
              f.positive(c.getMaxConnections(), "circuit_breaker.max_connections"),
              f.positive(c.getMaxPendingRequests(), "circuit_breaker.max_pending_requests"),
              f.positive(c.getMaxRequests(), "circuit_breaker.max_requests"));
    }
    TrafficPolicy.OutlierDetection od = null;
    if (p.hasOutlierDetection()) {
      var o = p.getOutlierDetection();
      if (o.getMaxEjectionPercent() > 100) {
        f.error(
            "outlier_detection.max_ejection_percent", o.getMaxEjectionPercent() + " is above 100");
      }
      if (o.getBaseEjectionTimeMs() == 0 || o.getMaxEjectionTimeMs() < o.getBaseEjectionTimeMs()) {
        f.error("outlier_detection", "need 0 < base_ejection_time_ms <= max_ejection_time_ms");
      }
      if (o.getConsecutive5Xx()
              + o.getConsecutiveGatewayErrors()
              + o.getConsecutiveConnectFailures()
          == 0) {
        f.error("outlier_detection", "every consecutive_* counter is 0");
      }
      od =
          new TrafficPolicy.OutlierDetection(
              o.getConsecutive5Xx(),
              o.getConsecutiveGatewayErrors(),
              o.getConsecutiveConnectFailures(),
              Duration.ofMillis(o.getBaseEjectionTimeMs()),
              Duration.ofMillis(o.getMaxEjectionTimeMs()),
              o.getMaxEjectionPercent());
    }
    TrafficPolicy.Retry retry = TrafficPolicy.Retry.DEFAULT;
    if (p.hasRetry()) {
      var r = p.getRetry();
      if (r.getBudgetPercent() > 100) {
        f.error("retry.budget_percent", r.getBudgetPercent() + " is above 100");
      }
      if (r.getBackoffMaxMs() < r.getBackoffBaseMs()) {
        f.error("retry.backoff_max_ms", "is below backoff_base_ms");
      }
      retry =
          new TrafficPolicy.Retry(
              r.getBudgetPercent(),
              r.getMinRetryConcurrency(),
              Duration.ofMillis(r.getBackoffBaseMs()),
              Duration.ofMillis(r.getBackoffMaxMs()),
              r.getRetryNonIdempotent());
    }
    TrafficPolicy.RateLimit rl = null;
    if (p.hasRateLimit()) {
      var r = p.getRateLimit();
      if (r.getMaxTokens() == 0 || r.getTokensPerFill() == 0 || r.getFillIntervalMs() == 0) {
        f.error("rate_limit", "max_tokens, tokens_per_fill and fill_interval_ms must be above 0");
      }
      if (r.getMaxSources() == 0) {
        f.error("rate_limit.max_sources", "must be above 0");
      }
      rl =
          new TrafficPolicy.RateLimit(
              r.getMaxTokens(),
              r.getTokensPerFill(),
              Duration.ofMillis(r.getFillIntervalMs()),
              r.getPerSource(),
              r.getMaxSources());
    }
    Duration tcpIdle = null;
    if (p.hasTcpIdleTimeout()) {
      var d = p.getTcpIdleTimeout();
      if (d.getSeconds() < 0
          || d.getNanos() < 0
          || d.getNanos() > 999_999_999
          || Duration.ofSeconds(d.getSeconds(), d.getNanos())
                  .compareTo(TrafficPolicy.MAX_TCP_IDLE_TIMEOUT)
              > 0) {
        f.error("tcp_idle_timeout", "is not a google.protobuf.Duration in 0-168h");
      } else {
        tcpIdle = Duration.ofSeconds(d.getSeconds(), d.getNanos());
      }
    }
    if (f.failed()) {
      return null;
    }
    return new TrafficPolicy(
        p.getName(), p.getNamespace(), p.getService(), lb, cb, od, retry, rl, tcpIdle);
  }
}
