package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.metrics.PrometheusConventions;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PrometheusServer;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dashboards and rules in {@code deploy/} against a real Prometheus (the Debian package)
 * scraping a real node proxy while traffic flows: every panel query, every template variable and
 * every recording rule returns data, and every alert expression loads with health "ok" (and passes
 * {@code promtool check rules}). Prometheus is a {@link PrometheusServer}: on 127.0.0.1 on a free
 * port, storing in the test's temp dir, stopped by its PID whatever happens. Also checks the admin
 * endpoints that need a running node ({@code /ready}, {@code /config_dump}, {@code /logging}).
 */
@RootTest
class PrometheusDashboardsRootTest {
  private static final String JOB = "nodemesh-proxy";
  private static final List<String> ELSEWHERE = List.of("control-plane.json", "security.json");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String GRPC_VIP = "10.97.0.30";

  /** A gRPC Service behind a GRPCRoute, so its calls take the L7 path and are counted there. */
  private static final String GRPC_SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: grpc
        namespace: default
      spec:
        clusterIP: %s
        selector:
          app: grpc
        ports:
          - name: grpc
            port: 9090
            targetPort: 9090
            appProtocol: grpc
      """
          .formatted(GRPC_VIP);

  private static final String GRPC_ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata:
        name: grpc
        namespace: default
      spec:
        parentRefs:
          - {group: "", kind: Service, name: grpc, port: 9090}
        rules:
          - matches:
              - method: {service: test.Echo}
            backendRefs:
              - {name: grpc, port: 9090}
      """;

  /**
   * python3-grpcio in the client pod: unary calls of a few request sizes until killed (the test
   * stops it by its PID), and by itself after three minutes in any case.
   */
  private static final String GRPC_CLIENT =
      """
      import time, grpc
      ch = grpc.insecure_channel("%s:9090", options=[("grpc.enable_http_proxy", 0)])
      who = ch.unary_unary("/test.Echo/Who")
      end = time.monotonic() + 180
      i = 0
      while time.monotonic() < end:
          try:
              who(b"x" * (10 ** (i %% 4)), timeout=10)
          except grpc.RpcError:
              pass
          i += 1
          time.sleep(0.02)
      """
          .formatted(GRPC_VIP);

  @TempDir Path tmp;
  private TestNode node;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addStandardMesh();
    node.addPod("outside", 20);
    node.serve("outside", 8080, TestServer.Mode.NAME);
    node.addPod("grpc-1", 30);
    node.serveGrpc("grpc-1", 9090, "Who");
    node.writeConfig("pods.yaml", Mesh.pods() + Mesh.pod("grpc-1", TestNode.SUBNET + 30, "grpc"));
    node.writeConfig(
        "services.yaml", Mesh.service("echo", Mesh.VIP, "echo") + "---\n" + GRPC_SERVICE);
    node.writeConfig("routes.yaml", GRPC_ROUTE);
    node.startProxy(TransportKind.EPOLL);
  }

  @AfterEach
  void tearDown() throws Exception {
    if (node != null) {
      node.close();
    }
  }

  @Test
  void adminEndpointsReportReadinessConfigAndLogging() throws Exception {
    HttpResponse<String> notReady = admin("/ready");
    assertEquals(503, notReady.statusCode(), notReady.body());
    assertTrue(notReady.body().contains("default/echo-2"), notReady.body());
    assertTrue(metric("nodemesh_proxy_ready").endsWith(" 0.0"));

    node.enrolStandardMesh();
    node.enrol("grpc-1");
    HttpResponse<String> ready = admin("/ready");
    assertEquals(200, ready.statusCode(), ready.body());
    assertTrue(metric("nodemesh_proxy_ready").endsWith(" 1.0"));

    JsonNode dump = JSON.readTree(admin("/config_dump").body());
    assertTrue(dump.get("version").asLong() >= 1, dump.toString());
    assertEquals(5, dump.get("workloads").size(), dump.toString());
    JsonNode echo = dump.get("services").get(0);
    assertEquals(2, dump.get("services").size(), dump.toString());
    assertEquals("echo", echo.get("name").asText());
    assertEquals(Mesh.VIP, echo.get("vips").get(0).asText());
    assertEquals(
        List.of("default/echo-1", "default/echo-2", "default/echo-3"),
        JSON.convertValue(echo.get("endpoints"), List.class));

    HttpResponse<String> levels = admin("/logging");
    assertEquals(200, levels.statusCode());
    assertEquals("logback", JSON.readTree(levels.body()).get("backend").asText(), levels.body());
    HttpResponse<String> change = admin("/logging?level=debug");
    assertEquals(405, change.statusCode(), change.body()); // a change needs POST or PUT
  }

  @Test
  void everyDashboardQueryAndRuleReturnsDataFromARealPrometheus() throws Exception {
    assertTrue(
        Files.isExecutable(PrometheusServer.PROMETHEUS),
        "scripts/setup installs the prometheus package");
    node.enrolStandardMesh();
    node.enrol("grpc-1");
    Path deploy = PrometheusServer.deployDir();
    Path rules = deploy.resolve("prometheus/nodemesh-rules.yaml");
    assertEquals(0, PrometheusServer.promtoolCheckRules(rules));

    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong rounds = new AtomicLong();
    Thread traffic = new Thread(() -> traffic(stop, rounds), "test-traffic");
    traffic.setDaemon(true);
    traffic.start();
    Path script = tmp.resolve("grpc-client.py");
    Files.writeString(script, GRPC_CLIENT);
    // /usr/bin/python3: the Debian interpreter python3-grpcio is installed for.
    Process grpc =
        new ProcessBuilder(
                "ip",
                "netns",
                "exec",
                node.pod("client").name(),
                "env",
                "-u",
                "http_proxy",
                "-u",
                "https_proxy",
                "/usr/bin/python3",
                script.toString())
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("grpc-client.log").toFile())
            .start();
    try (PrometheusServer prometheus =
        PrometheusServer.start(
            tmp.resolve("prometheus"), JOB, node.proxy().adminAddress().getPort(), rules)) {
      // Scraped, with two samples of traffic in the rate window, and the rules evaluated.
      Duration wait = Duration.ofSeconds(90);
      prometheus.awaitData("up{job=\"" + JOB + "\"} == 1", wait);
      prometheus.awaitData("rate(nodemesh_tcp_connect_duration_seconds_count[1m]) > 0", wait);
      prometheus.awaitData("node:nodemesh_tcp_connect_duration_seconds:p99 >= 0", wait);
      prometheus.awaitData("rate(nodemesh_grpc_responses_total{grpc_status=\"OK\"}[1m]) > 0", wait);
      assertTrue(rounds.get() > 0, "traffic flowed");
      assertTrue(grpc.isAlive(), Files.readString(tmp.resolve("grpc-client.log")));
      // The live proxy's whole scrape, including meters registered outside the metrics package.
      String live = admin("/metrics").body();
      assertEquals(List.of(), PrometheusConventions.nameProblems(live), live);
      assertEquals(List.of(), PrometheusConventions.labelProblems(live, "test-node"), live);

      AtomicInteger queries = new AtomicInteger();
      List<String> problems = new ArrayList<>();
      for (Path dashboard : dashboards(deploy)) {
        problems.addAll(prometheus.dashboardProblems(dashboard, queries));
      }
      problems.addAll(prometheus.ruleProblems(rules, queries));
      assertEquals(List.of(), problems, queries + " queries checked");
      assertTrue(queries.get() > 30, "found " + queries + " queries");

      // Identity is off on this node: no principal on any traffic series, whatever the caller's
      // address (the plaintext caller "outside" included).
      List<String> opened =
          live.lines().filter(l -> l.startsWith("nodemesh_tcp_connections_opened_total{")).toList();
      assertTrue(
          opened.stream()
              .anyMatch(
                  l ->
                      l.contains("reporter=\"destination\"")
                          && l.contains("destination_workload=\"echo-1\"")),
          String.join("\n", opened));
      for (String l : opened) {
        assertTrue(
            l.contains("source_principal=\"unknown\"")
                && l.contains("destination_principal=\"unknown\""),
            l);
      }
    } finally {
      stop.set(true);
      grpc.destroy();
      if (!grpc.waitFor(10, java.util.concurrent.TimeUnit.SECONDS)) {
        grpc.destroyForcibly();
      }
      traffic.join(10_000);
    }
  }

  /** Service traffic (name and echo ports), a refused port, and inbound from outside the mesh. */
  private void traffic(AtomicBoolean stop, AtomicLong rounds) {
    byte[] payload = new byte[4096];
    while (!stop.get()) {
      try {
        try (SocketChannel ch = node.connect("client", Mesh.VIP, 80)) {
          drain(ch);
        }
        try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
          ch.write(ByteBuffer.wrap(payload));
          ch.shutdownOutput();
          drain(ch);
        }
        try (SocketChannel ch = node.connect("outside", node.ip("echo-1"), 8080)) {
          drain(ch);
        }
        try (SocketChannel ch = node.connect("client", Mesh.VIP, 81)) {
          drain(ch);
        } catch (IOException expected) {
          // The service has no port 81: the proxy refuses, counted as failed.
        }
        rounds.incrementAndGet();
        Thread.sleep(20);
      } catch (IOException e) {
        // Keep going: a single failed round is visible in the metrics, not a test failure.
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return;
      }
    }
  }

  private static void drain(SocketChannel ch) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(8192);
    while (ch.read(buf) >= 0) {
      buf.clear();
    }
  }

  private HttpResponse<String> admin(String path) throws IOException, InterruptedException {
    InetSocketAddress a = node.proxy().adminAddress();
    return http.send(
        HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + a.getPort() + path))
            .timeout(Duration.ofSeconds(10))
            .build(),
        HttpResponse.BodyHandlers.ofString());
  }

  private String metric(String name) throws IOException, InterruptedException {
    for (String line : admin("/metrics").body().split("\n")) {
      if (line.startsWith(name + "{")) {
        return line;
      }
    }
    throw new AssertionError("no " + name);
  }

  private static List<Path> dashboards(Path deploy) throws IOException {
    try (Stream<Path> files = Files.list(deploy.resolve("grafana"))) {
      // The control plane's dashboard is checked against a control plane, and the security one
      // against nodes with certificates from its CA (both in the control module).
      List<Path> out =
          files
              .filter(f -> f.toString().endsWith(".json"))
              .filter(f -> !ELSEWHERE.contains(f.getFileName().toString()))
              .sorted()
              .toList();
      assertEquals(3, out.size(), out.toString());
      return out;
    }
  }
}
