package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.TrafficPolicy;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** TrafficPolicy resources from the control plane: decoded, or refused (NACK) naming each field. */
class TrafficPolicyKindTest {
  private static final TrafficPolicy GOOD =
      TrafficPolicy.newBuilder()
          .setName("web")
          .setNamespace("shop")
          .setService("web")
          .setLoadBalancer(
              TrafficPolicy.LoadBalancer.newBuilder()
                  .setAlgorithm(TrafficPolicy.Algorithm.RING_HASH)
                  .setHashHeader("x-user")
                  .setLocalityPreference(true))
          .setCircuitBreaker(
              TrafficPolicy.CircuitBreaker.newBuilder()
                  .setMaxConnections(10)
                  .setMaxPendingRequests(5)
                  .setMaxRequests(20))
          .setOutlierDetection(
              TrafficPolicy.OutlierDetection.newBuilder()
                  .setConsecutive5Xx(3)
                  .setBaseEjectionTimeMs(1000)
                  .setMaxEjectionTimeMs(5000)
                  .setMaxEjectionPercent(50))
          .setRateLimit(
              TrafficPolicy.RateLimit.newBuilder()
                  .setMaxTokens(10)
                  .setTokensPerFill(1)
                  .setFillIntervalMs(100)
                  .setMaxSources(8))
          .build();

  @Test
  void aGoodPolicyDecodesWithDefaultsForAbsentSections() {
    List<String> errors = new ArrayList<>();
    var p = TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "shop/web", GOOD);
    assertEquals(List.of(), errors);
    assertEquals("x-user", p.loadBalancer().hashHeader());
    assertEquals(20, p.circuitBreaker().maxRequests());
    assertEquals(Duration.ofSeconds(1), p.outlierDetection().baseEjectionTime());
    assertEquals(dev.nodemesh.model.config.TrafficPolicy.Retry.DEFAULT, p.retry());
    assertEquals(Duration.ofMillis(100), p.rateLimit().fillInterval());
  }

  @Test
  void aBadPolicyIsRefusedWithEveryFieldNamed() {
    TrafficPolicy bad =
        GOOD.toBuilder()
            .setService("")
            .setLoadBalancer(
                TrafficPolicy.LoadBalancer.newBuilder()
                    .setAlgorithm(TrafficPolicy.Algorithm.ROUND_ROBIN)
                    .setHashSourceIp(true))
            .setCircuitBreaker(GOOD.getCircuitBreaker().toBuilder().setMaxRequests(0))
            .setOutlierDetection(GOOD.getOutlierDetection().toBuilder().setMaxEjectionPercent(101))
            .setRetry(TrafficPolicy.Retry.newBuilder().setBackoffBaseMs(10).setBackoffMaxMs(1))
            .setRateLimit(GOOD.getRateLimit().toBuilder().setMaxTokens(0))
            .build();
    List<String> errors = new ArrayList<>();
    assertNull(TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "shop/web", bad));
    for (String want :
        List.of(
            "TrafficPolicy shop/web: service: is required",
            "TrafficPolicy shop/web: load_balancer: a hash is only for algorithm RING_HASH",
            "TrafficPolicy shop/web: circuit_breaker.max_requests: 0 is not in 1-",
            "TrafficPolicy shop/web: outlier_detection.max_ejection_percent: 101 is above 100",
            "TrafficPolicy shop/web: retry.backoff_max_ms: is below backoff_base_ms",
            "TrafficPolicy shop/web: rate_limit: max_tokens, tokens_per_fill and fill_interval_ms")) {
      assertTrue(errors.stream().anyMatch(e -> e.startsWith(want)), want + "\nin " + errors);
    }
  }

  @Test
  void theResourceNameMustBeNamespaceSlashName() {
    List<String> errors = new ArrayList<>();
    assertNull(TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "other/web", GOOD));
    assertEquals(
        List.of("TrafficPolicy other/web: name: resource name must be \"shop/web\""), errors);
  }
}
