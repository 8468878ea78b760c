package dev.nodemesh.proxy.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;

import java.util.Set;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/** A removed pod's series go; other workloads' series and the proxy's own stay. */
class MetricsReleaseTest {
  private static TrafficLabels labels(String reporter, String src, String dst) {
    return new TrafficLabels(reporter, src, "default", dst, "default", "svc.default", "u", "u");
  }

  private static Set<String> ids(ProxyMetrics m) {
    return m.registry().getMeters().stream()
        .map(x -> x.getId().toString())
        .collect(Collectors.toSet());
  }

  @Test
  void releasingAPodRemovesTheSeriesNamingItAndOnlyThose() {
    ProxyMetrics metrics = new ProxyMetrics("n");
    metrics.connection(labels("source", "stays", "echo")).connected(1);
    Set<String> before = ids(metrics);
    for (int i = 0; i < 50; i++) {
      String pod = "churn-" + i;
      metrics.connection(labels("source", pod, "echo")).connected(1);
      metrics.connection(labels("destination", "stays", pod)).connected(1);
      metrics.http(labels("source", pod, "echo")).record(200, 1000, 1, 1, "0");
      metrics.policyDenials("destination", "u", pod, "default", "denied").increment();
    }
    for (int i = 0; i < 50; i++) {
      metrics.release("default", "churn-" + i);
    }
    assertEquals(before, ids(metrics));

    // A pod of the same name later gets fresh, registered meters.
    ConnectionMeters old = metrics.connection(labels("source", "stays", "echo"));
    metrics.release("default", "stays");
    ConnectionMeters fresh = metrics.connection(labels("source", "stays", "echo"));
    assertNotSame(old, fresh);
    fresh.connected(1);
    assertEquals(
        1.0,
        metrics
            .registry()
            .get("nodemesh.tcp.connections.opened")
            .tag("source_workload", "stays")
            .counter()
            .count());
  }
}
