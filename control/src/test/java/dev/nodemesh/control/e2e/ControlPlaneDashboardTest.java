package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.testing.PrometheusServer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * deploy/grafana/control-plane.json and deploy/prometheus/nodemesh-control-rules.yaml against a
 * real Prometheus (the Debian package) scraping a running control plane while a node proxy is
 * connected over xDS and the config keeps changing, with the CA on and the proxy holding its pod's
 * certificate: every panel query (CA panels included), the template variable and every recording
 * rule return data, every alert loads with health "ok", and promtool accepts the file. Needs no
 * root: the proxy only takes config and certificates, no pod is enrolled.
 */
class ControlPlaneDashboardTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String JOB = "nodemesh-control";

  @TempDir Path dir;

  @Test
  void everyPanelQueryAndRuleReturnsDataFromARealPrometheus() throws Exception {
    assertTrue(
        Files.isExecutable(PrometheusServer.PROMETHEUS), "scripts/setup installs prometheus");
    Path deploy = PrometheusServer.deployDir();
    Path rules = deploy.resolve("prometheus/nodemesh-control-rules.yaml");
    assertEquals(0, PrometheusServer.promtoolCheckRules(rules));
    CertificateAuthority ca = LoopbackMesh.ca(dir, Duration.ofMinutes(10));

    Path config = Files.createDirectory(dir.resolve("config"));
    LoopbackMesh.write(
        dir, config, "pods.yaml", LoopbackMesh.ECHO_POD.formatted("echo-1", "10.1.0.1"));
    LoopbackMesh.write(dir, config, "services.yaml", LoopbackMesh.ECHO_SERVICE);
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong edits = new AtomicLong();
    try (ControlPlane cp = LoopbackMesh.startWithCa(dir, config, ca);
        // With a certificate for its pod from the CA, so the CA panels have data.
        NodeProxy proxy = LoopbackMesh.startProxy(dir, cp, true)) {
      // Config churn, bounded in count and time: every edit is a push and an ACK.
      Thread churn =
          new Thread(
              () -> {
                for (int i = 0; i < 1000 && !stop.get(); i++) {
                  try {
                    String pods = LoopbackMesh.ECHO_POD.formatted("echo-1", "10.1.0.1");
                    if (i % 2 == 0) {
                      pods += "---\n" + LoopbackMesh.ECHO_POD.formatted("echo-2", "10.1.0.2");
                    }
                    LoopbackMesh.write(dir, config, "pods.yaml", pods);
                    edits.incrementAndGet();
                    Thread.sleep(250);
                  } catch (Exception e) {
                    return;
                  }
                }
              },
              "test-config-churn");
      churn.setDaemon(true);
      churn.start();
      int port = Objects.requireNonNull(cp.healthAddress()).getPort();
      try (PrometheusServer prometheus =
          PrometheusServer.start(dir.resolve("prometheus"), JOB, port, rules)) {
        Duration wait = Duration.ofSeconds(90);
        prometheus.awaitData("up{job=\"" + JOB + "\"} == 1", wait);
        prometheus.awaitData("rate(nodemesh_xds_push_latency_seconds_count[1m]) > 0", wait);
        prometheus.awaitData("job:nodemesh_xds_push_latency_seconds:p99 >= 0", wait);
        assertTrue(edits.get() > 0);

        prometheus.awaitData("nodemesh_ca_certificates_issued_total > 0", wait);
        AtomicInteger queries = new AtomicInteger();
        List<String> problems =
            new ArrayList<>(
                prometheus.dashboardProblems(
                    deploy.resolve("grafana/control-plane.json"), queries));
        problems.addAll(prometheus.ruleProblems(rules, queries));
        assertEquals(List.of(), problems, queries + " queries checked");
        assertTrue(queries.get() >= 21, "found " + queries + " queries");
        // The connected-nodes panel sees the one proxy.
        JsonNode nodes = prometheus.query("sum(nodemesh_xds_connected_nodes)");
        assertEquals("1", nodes.path("data").path("result").get(0).path("value").get(1).asText());
      } finally {
        stop.set(true);
        churn.join(10_000);
      }
    }
  }
}
