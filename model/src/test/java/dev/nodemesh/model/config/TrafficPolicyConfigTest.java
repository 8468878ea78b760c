package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** TrafficPolicies in the YAML directory: what is read, defaulted, and refused with which path. */
class TrafficPolicyConfigTest {
  @TempDir Path dir;

  static final String FULL =
      """
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: TrafficPolicy
      metadata: {name: web, namespace: shop}
      spec:
        targetRef: {group: "", kind: Service, name: web}
        loadBalancer:
          algorithm: RING_HASH
          hash: {header: X-User}
          localityPreference: false
        circuitBreaker: {maxConnections: 10, maxPendingRequests: 5, maxRequests: 20}
        outlierDetection:
          consecutive5xx: 4
          consecutiveGatewayErrors: 2
          consecutiveConnectFailures: 1
          baseEjectionTime: 5s
          maxEjectionTime: 1m
          maxEjectionPercent: 50
        retry:
          budgetPercent: 25
          minRetryConcurrency: 1
          backoff: {base: 10ms, max: 100ms}
          retryNonIdempotent: true
        rateLimit: {maxTokens: 100, tokensPerFill: 10, fillInterval: 100ms, perSource: true, maxSources: 500}
      """;

  @Test
  void readsEveryField() throws Exception {
    MeshYaml.write(dir, "tp.yaml", FULL);
    ConfigSnapshot s = ConfigLoader.load(dir);
    TrafficPolicy p = s.trafficPolicy(new NamespacedName("shop", "web"));
    assertEquals(
        new TrafficPolicy(
            "web",
            "shop",
            "web",
            new TrafficPolicy.LoadBalancer(
                TrafficPolicy.Algorithm.RING_HASH, "x-user", false, false),
            new TrafficPolicy.CircuitBreaker(10, 5, 20),
            new TrafficPolicy.OutlierDetection(
                4, 2, 1, Duration.ofSeconds(5), Duration.ofMinutes(1), 50),
            new TrafficPolicy.Retry(25, 1, Duration.ofMillis(10), Duration.ofMillis(100), true),
            new TrafficPolicy.RateLimit(100, 10, Duration.ofMillis(100), true, 500)),
        p);
    assertEquals(List.of(p), s.trafficPolicies());
    assertTrue(s.describe().contains("1 traffic policies"), s.describe());
  }

  @Test
  void anEmptySpecBesidesTheTargetGetsTheDefaults() throws Exception {
    MeshYaml.write(
        dir,
        "tp.yaml",
        """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: p}
        spec:
          targetRef: {kind: Service, name: web}
          outlierDetection: {}
        """);
    TrafficPolicy p = ConfigLoader.load(dir).trafficPolicy(new NamespacedName("default", "web"));
    assertEquals(TrafficPolicy.LoadBalancer.DEFAULT, p.loadBalancer());
    assertEquals(TrafficPolicy.Algorithm.PEAK_EWMA, p.loadBalancer().algorithm());
    assertEquals(TrafficPolicy.Retry.DEFAULT, p.retry());
    assertNull(p.circuitBreaker());
    assertNull(p.rateLimit());
    assertEquals(
        new TrafficPolicy.OutlierDetection(
            5, 0, 5, Duration.ofSeconds(30), Duration.ofMinutes(5), 10),
        p.outlierDetection());
  }

  @Test
  void aMalformedPolicyRejectsTheWholeDirectoryWithEveryFieldPath() throws Exception {
    MeshYaml.write(dir, "good.yaml", FULL);
    MeshYaml.write(
        dir,
        "bad.yaml",
        """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: bad, namespace: shop}
        spec:
          targetRef: {kind: Deployment, name: web}
          loadBalancer: {algorithm: FASTEST, hash: {header: "a b"}}
          circuitBreaker: {maxRequests: 0, maxConections: 3}
          outlierDetection: {baseEjectionTime: 10x, maxEjectionPercent: 101}
          retry: {budgetPercent: -1, backoff: {base: 1s, max: 10ms}}
          rateLimit: {tokensPerFill: 0, perSource: "yes"}
        """);
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    String w = "bad.yaml: TrafficPolicy shop/bad: ";
    List<String> expected =
        List.of(
            w + "spec.targetRef.kind: \"Deployment\" is not Service",
            w + "spec.loadBalancer.algorithm: \"FASTEST\" is not one of",
            w + "spec.loadBalancer.hash: is only for algorithm RING_HASH",
            w + "spec.loadBalancer.hash.header: \"a b\" is not a valid header name",
            w + "spec.circuitBreaker.maxConections: unknown field",
            w + "spec.circuitBreaker.maxRequests: 0 is out of range",
            w + "spec.outlierDetection.baseEjectionTime: \"10x\" is not a duration",
            w + "spec.outlierDetection.maxEjectionPercent: 101 is out of range 0-100",
            w + "spec.retry.budgetPercent: -1 is out of range 0-100",
            w + "spec.retry.backoff.max: is shorter than backoff.base",
            w + "spec.rateLimit.maxTokens: is required",
            w + "spec.rateLimit.tokensPerFill: 0 is out of range",
            w + "spec.rateLimit.perSource: \"yes\" is not true or false");
    for (String x : expected) {
      assertTrue(e.errors().stream().anyMatch(m -> m.startsWith(x)), x + "\nin " + e.errors());
    }
    assertTrue(
        e.errors().stream().noneMatch(m -> m.startsWith("good.yaml")), e.errors().toString());
  }

  @Test
  void twoPoliciesForOneServiceAreRefused() throws Exception {
    MeshYaml.write(dir, "a.yaml", FULL);
    MeshYaml.write(
        dir, "b.yaml", FULL.replace("name: web, namespace: shop", "name: other, namespace: shop"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(
        List.of(
            "b.yaml: TrafficPolicy shop/other: spec.targetRef.name: Service shop/web already has"
                + " TrafficPolicy shop/web (in a.yaml)"),
        e.errors());
  }

  @Test
  void aTargetRefIsRequiredAndOtherGroupsAreIgnored() throws Exception {
    MeshYaml.write(
        dir,
        "x.yaml",
        """
        apiVersion: other.example.com/v1
        kind: TrafficPolicy
        metadata: {name: theirs}
        spec: {anything: goes}
        ---
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: mine}
        spec: {retry: {budgetPercent: 10}}
        """);
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(
        List.of(
            "x.yaml: TrafficPolicy default/mine: spec.targetRef: is required (the Service this"
                + " policy applies to)"),
        e.errors());
  }

  @Test
  void aPodsZoneLabelBecomesItsZone() throws Exception {
    MeshYaml.write(
        dir,
        "pod.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: a
          labels: {topology.kubernetes.io/zone: eu-1a}
        status: {podIP: 10.0.0.5}
        """);
    assertEquals("eu-1a", ConfigLoader.load(dir).workloads().get(0).zone());
  }
}
