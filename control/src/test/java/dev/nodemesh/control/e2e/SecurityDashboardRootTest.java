package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.metrics.PrometheusConventions;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.PrometheusServer;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * deploy/grafana/security.json (and the proxy rules file) against a real Prometheus scraping two
 * node proxies that run with identity on: a control plane with its CA serves xDS and certificates
 * (nothing faked, as in {@link RotationRootTest}), a client pod on node-1 keeps talking to an echo
 * pod on node-2 through an HBONE tunnel, and a "rogue" pod on node-1 keeps being refused by
 * node-2's ALLOW policy. Every panel query and template variable returns data, every recording rule
 * too, every alert loads with health "ok", and both live scrapes (certificate, tunnel, denial and
 * xDS meters included) follow the naming conventions. Both interception modes; the pods'
 * connections are sockets made in the pods ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class SecurityDashboardRootTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final String TD = "cluster.local";
  private static final String ECHO_VIP = "10.97.0.10";
  private static final String JOB = "nodemesh-proxy";
  private static final String POLICY =
      """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: allow-client, namespace: default}
      spec: {selector: {matchLabels: {app: echo}}, action: ALLOW, rules: [{from: [{principals: ["spiffe://cluster.local/ns/default/sa/client"]}]}]}
      """;

  @Parameter Interception mode;
  @TempDir Path tmp;

  @Test
  void everySecurityPanelReturnsDataFromNodesWithIdentity() throws Exception {
    assertTrue(Files.isExecutable(PrometheusServer.PROMETHEUS), "scripts/setup installs it");
    Path deploy = PrometheusServer.deployDir();
    Path rules = deploy.resolve("prometheus/nodemesh-rules.yaml");
    assertEquals(0, PrometheusServer.promtoolCheckRules(rules));
    Path mesh = Files.createDirectories(tmp.resolve("mesh"));
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(tmp.resolve("ca")),
            CaSettings.of(TD, Duration.ofMinutes(10)),
            Clock.systemUTC());
    Path tokens = tmp.resolve("tokens");
    BootstrapTokens.generate(tokens, List.of("node-1", "node-2"));
    try (Interception.Setup modes = mode.setUp();
        TwoNodeCluster cluster = TwoNodeCluster.create(tmp.resolve("nodes"))) {
      TestNode n1 = cluster.node1;
      TestNode n2 = cluster.node2;
      n1.addPod("client", 10);
      n1.addPod("rogue", 11);
      n2.addPod("echo-1", 11);
      n2.serve("echo-1", 9000, TestServer.Mode.ECHO);
      RotationRootTest.write(
          mesh,
          "pods.yaml",
          Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
              + Mesh.pod("rogue", n1.ip("rogue"), "rogue", "node-1", "rogue")
              + Mesh.pod("echo-1", n2.ip("echo-1"), "echo", "node-2", "echo"));
      RotationRootTest.write(mesh, "services.yaml", Mesh.service("echo", ECHO_VIP, "echo"));
      RotationRootTest.write(mesh, "policies.yaml", POLICY);
      try (ControlPlane cp =
          ControlPlane.start(
              new LocalSource(mesh, 50),
              new InetSocketAddress("127.0.0.1", 0),
              new InetSocketAddress("127.0.0.1", 0),
              Duration.ofMillis(20),
              new CaOptions(ca, BootstrapTokens.load(tokens), List.of("127.0.0.1")))) {
        String xds = "127.0.0.1:" + cp.address().getPort();
        try {
          run(n1, n2, xds, tokens, modes, deploy, rules);
        } finally {
          // Before the control plane, which they would otherwise keep reconnecting to.
          n1.stopProxy();
          n2.stopProxy();
        }
      }
    }
  }

  private void run(
      TestNode n1,
      TestNode n2,
      String xds,
      Path tokens,
      Interception.Setup modes,
      Path deploy,
      Path rules)
      throws Exception {
    NodeProxy p1 = n1.startProxy(RotationRootTest.config(n1, xds, tokens, modes.nextNode()));
    NodeProxy p2 = n2.startProxy(RotationRootTest.config(n2, xds, tokens, modes.nextNode()));
    CertificateManager certs1 = p1.identity();
    CertificateManager certs2 = p2.identity();
    assertNotNull(certs1);
    assertNotNull(certs2);
    Await.until(
        WAIT,
        "both nodes' certificates and policy",
        () ->
            certs1.held().size() == 2
                && certs2.held().size() == 1
                && p2.dataPlane().snapshots().current().authorizationPolicies().size() == 1
                && p1.dataPlane().snapshots().current().workloads().size() == 3);
    assertFalse(n1.enrol("client").getAlreadyEnrolled());
    assertFalse(n1.enrol("rogue").getAlreadyEnrolled());
    assertFalse(n2.enrol("echo-1").getAlreadyEnrolled());
    assertEquals("ping", echo(n1, "client"));
    assertFalse(answered(n1, "rogue"), "the rogue pod is refused by node-2's policy");

    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong allowed = new AtomicLong();
    AtomicLong refused = new AtomicLong();
    Thread traffic =
        new Thread(
            () -> {
              // Bounded: stops when told, or after 10,000 rounds (minutes at 20 ms a round).
              for (int i = 0; i < 10_000 && !stop.get(); i++) {
                try {
                  if ("ping".equals(echo(n1, "client"))) {
                    allowed.incrementAndGet();
                  }
                  if (!answered(n1, "rogue")) {
                    refused.incrementAndGet();
                  }
                  Thread.sleep(20);
                } catch (IOException e) {
                  // a failed round shows in the metrics, not as a test failure
                } catch (InterruptedException e) {
                  return;
                }
              }
            },
            "test-traffic");
    traffic.setDaemon(true);
    traffic.start();
    try (PrometheusServer prometheus =
        PrometheusServer.start(
            tmp.resolve("prometheus"),
            Map.of(JOB, List.of(p1.adminAddress().getPort(), p2.adminAddress().getPort())),
            List.of(rules))) {
      Duration wait = Duration.ofSeconds(90);
      prometheus.awaitData("count(up{job=\"" + JOB + "\"} == 1) == 2", wait);
      prometheus.awaitData("rate(nodemesh_tunnel_streams_opened_total[1m]) > 0", wait);
      prometheus.awaitData("rate(nodemesh_policy_denials_total[1m]) > 0", wait);
      prometheus.awaitData("node:nodemesh_tcp_connect_duration_seconds:p99 >= 0", wait);
      // node-2's series alone satisfy the p99; node-1's source-side edge needs its own two scrapes.
      prometheus.awaitData("edge:nodemesh_tcp_connections_opened:rate1m > 0", wait);
      assertTrue(allowed.get() > 0 && refused.get() > 0, allowed + " allowed, " + refused);

      for (NodeProxy p : List.of(p1, p2)) {
        String live = p.dataPlane().metrics().scrape();
        List<String> problems = new ArrayList<>(PrometheusConventions.nameProblems(live));
        String node = p == p1 ? "node-1" : "node-2";
        problems.addAll(PrometheusConventions.labelProblems(live, node));
        assertEquals(List.of(), problems, live);
        assertTrue(live.contains("nodemesh_xds_connected{node=\"" + node + "\"} 1.0"), live);
      }

      AtomicInteger queries = new AtomicInteger();
      List<String> problems =
          new ArrayList<>(
              prometheus.dashboardProblems(deploy.resolve("grafana/security.json"), queries));
      problems.addAll(prometheus.ruleProblems(rules, queries));
      assertEquals(List.of(), problems, queries + " queries checked");
      assertTrue(queries.get() >= 16, "found " + queries + " queries");
      // The denial is node-2's, as the destination, with the policy's reason.
      assertEquals(
          "node-2 destination no_allow_match",
          first(prometheus, "sum by (node, reporter, reason) (nodemesh_policy_denials_total)"));
    } finally {
      stop.set(true);
      traffic.join(10_000);
    }
  }

  private static String first(PrometheusServer prometheus, String query) throws Exception {
    var metric = prometheus.query(query).path("data").path("result").get(0).path("metric");
    return metric.path("node").asText()
        + " "
        + metric.path("reporter").asText()
        + " "
        + metric.path("reason").asText();
  }

  /** Sends "ping" from {@code pod} to the echo service and returns what came back. */
  private static String echo(TestNode n, String pod) throws IOException {
    try (Conn ch = n.podConnect(pod, ECHO_VIP, 9000)) {
      ch.write(ByteBuffer.wrap("ping".getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      ByteBuffer buf = ByteBuffer.allocate(64);
      while (ch.read(buf) >= 0 && buf.hasRemaining()) {
        // until the echo closes
      }
      return new String(buf.array(), 0, buf.position(), StandardCharsets.UTF_8);
    }
  }

  /** False when the connection is reset or closed with not one byte relayed back. */
  private static boolean answered(TestNode n, String pod) throws IOException {
    Conn conn;
    try {
      conn = n.podConnect(pod, ECHO_VIP, 9000);
    } catch (SocketException e) {
      // eBPF mode: the listener is on loopback, so the reset can arrive before connect() returns.
      if (e.getMessage() != null && e.getMessage().contains("reset")) {
        return false;
      }
      throw e;
    }
    try (Conn ch = conn) {
      ch.write(ByteBuffer.wrap("hello".getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      try {
        return ch.read(ByteBuffer.allocate(64)) > 0;
      } catch (IOException reset) {
        return false;
      }
    }
  }
}
