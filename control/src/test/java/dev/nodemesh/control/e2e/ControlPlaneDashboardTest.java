package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.PrometheusServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
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
  private static final String POD =
      """
      apiVersion: v1
      kind: Pod
      metadata: {name: %s, namespace: default, labels: {app: echo}}
      spec: {nodeName: node-1, containers: [{name: app, image: app, ports: [{name: http, containerPort: 8080}]}]}
      status: {podIP: "%s"}
      """;
  private static final String SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: echo, namespace: default}
      spec: {clusterIP: 10.96.0.10, selector: {app: echo}, ports: [{port: 80, targetPort: http}]}
      """;

  @TempDir Path dir;

  @Test
  void everyPanelQueryAndRuleReturnsDataFromARealPrometheus() throws Exception {
    assertTrue(
        Files.isExecutable(PrometheusServer.PROMETHEUS), "scripts/setup installs prometheus");
    Path deploy = PrometheusServer.deployDir();
    Path rules = deploy.resolve("prometheus/nodemesh-control-rules.yaml");
    assertEquals(0, PrometheusServer.promtoolCheckRules(rules));
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")),
            CaSettings.of("cluster.local", Duration.ofMinutes(10)),
            Clock.systemUTC());
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1"));

    Path config = Files.createDirectory(dir.resolve("config"));
    write(config, "pods.yaml", POD.formatted("echo-1", "10.1.0.1"));
    write(config, "services.yaml", SERVICE);
    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong edits = new AtomicLong();
    try (ControlPlane cp =
            ControlPlane.start(
                new LocalSource(config, 50),
                new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0),
                Duration.ofMillis(20),
                new CaOptions(
                    ca, BootstrapTokens.load(dir.resolve("tokens")), List.of("127.0.0.1")));
        // With a certificate for its pod from the CA, so the CA panels have data.
        NodeProxy proxy =
            NodeProxy.start(
                new NodeProxyConfig(
                        TransportKind.NIO,
                        null,
                        dir.resolve("agent.sock"),
                        new InetSocketAddress("127.0.0.1", 0),
                        "node-1",
                        1,
                        InterceptionMode.iptables(),
                        "127.0.0.1:" + cp.address().getPort())
                    .withIdentity(
                        dir.resolve("ca/ca.crt"),
                        new IdentityConfig(
                            null, dir.resolve("node-1.token"), "cluster.local", Duration.ZERO)))) {
      // Config churn, bounded in count and time: every edit is a push and an ACK.
      Thread churn =
          new Thread(
              () -> {
                for (int i = 0; i < 1000 && !stop.get(); i++) {
                  try {
                    String pods = POD.formatted("echo-1", "10.1.0.1");
                    if (i % 2 == 0) {
                      pods += "---\n" + POD.formatted("echo-2", "10.1.0.2");
                    }
                    write(config, "pods.yaml", pods);
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

  private void write(Path config, String file, String text) throws Exception {
    Path tmp = dir.resolve(file + ".tmp");
    Files.writeString(tmp, text);
    Files.move(tmp, config.resolve(file), StandardCopyOption.ATOMIC_MOVE);
  }
}
