package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.nodemesh.api.config.v1.TrafficPolicy;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

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

  private static dev.nodemesh.model.config.@Nullable TrafficPolicy parse(
      String tcpIdleTimeout, List<String> errors) throws Exception {
    JsonNode doc =
        new YAMLMapper()
            .readTree(
                """
                apiVersion: traffic.nodemesh.dev/v1alpha1
                kind: TrafficPolicy
                metadata: {name: db, namespace: shop}
                spec:
                  targetRef: {kind: Service, name: db}
                  tcpIdleTimeout: %s
                """
                    .formatted(tcpIdleTimeout));
    return TrafficPolicyKind.YAML.parse("tp.yaml", errors, doc, "document 1");
  }

  @ParameterizedTest
  @CsvSource({"30s, PT30S", "1h30m, PT1H30M", "250ms, PT0.25S", "0s, PT0S", "168h, PT168H"})
  void theTcpIdleTimeoutRoundTripsYamlRecordProtoRecord(String yaml, Duration want)
      throws Exception {
    List<String> errors = new ArrayList<>();
    var parsed = parse(yaml, errors);
    assertEquals(List.of(), errors);
    assertEquals(want, parsed.tcpIdleTimeout());
    TrafficPolicy proto = TrafficPolicyKind.WIRE.encode(parsed);
    assertTrue(proto.hasTcpIdleTimeout(), "zero (never) must travel as set, unlike absent");
    assertEquals(want.getSeconds(), proto.getTcpIdleTimeout().getSeconds());
    assertEquals(want.getNano(), proto.getTcpIdleTimeout().getNanos());
    var decoded = TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "shop/db", proto);
    assertEquals(List.of(), errors);
    assertEquals(parsed, decoded);
  }

  @Test
  void anAbsentTcpIdleTimeoutStaysAbsentOnTheWire() {
    List<String> errors = new ArrayList<>();
    var p = TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "shop/web", GOOD);
    assertNull(p.tcpIdleTimeout(), "absent: the proxy's --tcp-idle-timeout applies");
    assertFalse(TrafficPolicyKind.WIRE.encode(p).hasTcpIdleTimeout());
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "169h | spec.tcpIdleTimeout: \"169h\" is longer than 168h (0s turns the timeout off)",
        "-5s | spec.tcpIdleTimeout: \"-5s\" is not a duration",
        "soon | spec.tcpIdleTimeout: \"soon\" is not a duration",
        "[30s] | spec.tcpIdleTimeout: expected a string, found a list"
      })
  void aBadTcpIdleTimeoutRefusesThePolicyNamingTheField(String yaml, String problem)
      throws Exception {
    List<String> errors = new ArrayList<>();
    assertNull(parse(yaml, errors));
    assertEquals(1, errors.size(), errors.toString());
    assertTrue(
        errors.get(0).startsWith("tp.yaml: TrafficPolicy shop/db: " + problem), errors.get(0));
  }

  @Test
  void aBadTcpIdleTimeoutOnTheWireIsNackedWhole() {
    for (var bad :
        List.of(
            com.google.protobuf.Duration.newBuilder().setSeconds(-1).build(),
            com.google.protobuf.Duration.newBuilder().setSeconds(168 * 3600 + 1).build(),
            com.google.protobuf.Duration.newBuilder().setSeconds(1).setNanos(-1).build(),
            com.google.protobuf.Duration.newBuilder().setSeconds(Long.MAX_VALUE).build())) {
      List<String> errors = new ArrayList<>();
      TrafficPolicy proto = GOOD.toBuilder().setTcpIdleTimeout(bad).build();
      assertNull(TrafficPolicyKind.WIRE.decode(new ResourceDecoder(errors), "shop/web", proto));
      assertEquals(
          List.of(
              "TrafficPolicy shop/web: tcp_idle_timeout: is not a google.protobuf.Duration in"
                  + " 0-168h"),
          errors,
          bad.toString());
    }
  }
}
