package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.metrics.PrometheusConventions;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The dashboards and rules in {@code deploy/} against a real Prometheus (the Debian package)
 * scraping a real node proxy while traffic flows: every panel query, every template variable and
 * every recording rule returns data, and every alert expression loads with health "ok" (and passes
 * {@code promtool check rules}). Prometheus listens on 127.0.0.1 on a free port, stores in the
 * test's temp dir, and is stopped by its PID whatever happens. Also checks the admin endpoints that
 * need a running node ({@code /ready}, {@code /config_dump}, {@code /logging}).
 */
@RootTest
class PrometheusDashboardsRootTest {
  private static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
  private static final Path PROMTOOL = Path.of("/usr/bin/promtool");
  private static final String JOB = "nodemesh-proxy";
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LABEL_VALUES =
      Pattern.compile("label_values\\((.*),\\s*([a-z_]+)\\)");

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
    HttpResponse<String> ready = admin("/ready");
    assertEquals(200, ready.statusCode(), ready.body());
    assertTrue(metric("nodemesh_proxy_ready").endsWith(" 1.0"));

    JsonNode dump = JSON.readTree(admin("/config_dump").body());
    assertTrue(dump.get("version").asLong() >= 1, dump.toString());
    assertEquals(4, dump.get("workloads").size(), dump.toString());
    JsonNode echo = dump.get("services").get(0);
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
    assertTrue(Files.isExecutable(PROMETHEUS), "scripts/setup installs the prometheus package");
    node.enrolStandardMesh();
    Path deploy = deployDir();
    Path rules = deploy.resolve("prometheus/nodemesh-rules.yaml");
    assertEquals(0, run(PROMTOOL.toString(), "check", "rules", rules.toString()));

    AtomicBoolean stop = new AtomicBoolean();
    AtomicLong rounds = new AtomicLong();
    Thread traffic = new Thread(() -> traffic(stop, rounds), "test-traffic");
    traffic.setDaemon(true);
    traffic.start();
    Process prometheus = null;
    try {
      int port = freePort();
      prometheus = startPrometheus(rules, port);
      String api = "http://127.0.0.1:" + port;
      // Scraped, with two samples of traffic in the rate window, and the rules evaluated.
      awaitData(api, prometheus, "up{job=\"" + JOB + "\"} == 1");
      awaitData(api, prometheus, "rate(nodemesh_tcp_connect_duration_seconds_count[1m]) > 0");
      awaitData(api, prometheus, "node:nodemesh_tcp_connect_duration_seconds:p99 >= 0");
      assertTrue(rounds.get() > 0, "traffic flowed");
      // The live proxy's whole scrape, including meters registered outside the metrics package.
      String live = admin("/metrics").body();
      assertEquals(List.of(), PrometheusConventions.nameProblems(live), live);
      assertEquals(List.of(), PrometheusConventions.labelProblems(live, "test-node"), live);

      List<String> problems = new ArrayList<>();
      int queries = 0;
      for (Path dashboard : dashboards(deploy)) {
        JsonNode d = JSON.readTree(dashboard.toFile());
        for (JsonNode v : d.path("templating").path("list")) {
          if (v.path("type").asText().equals("query")) {
            queries++;
            String q = substitute(v.path("query").path("query").asText(v.path("query").asText()));
            checkLabelValues(api, dashboard.getFileName() + " variable " + v.get("name"), q)
                .ifPresent(problems::add);
          }
        }
        for (JsonNode panel : panels(d)) {
          for (JsonNode target : panel.path("targets")) {
            queries++;
            String where = dashboard.getFileName() + " \"" + panel.path("title").asText() + "\"";
            String expr = substitute(target.path("expr").asText());
            check(api, where, expr).ifPresent(problems::add);
          }
        }
      }
      JsonNode ruleFile = new YAMLMapper().readTree(rules.toFile());
      for (JsonNode group : ruleFile.get("groups")) {
        for (JsonNode rule : group.get("rules")) {
          if (rule.has("record")) {
            queries += 2;
            String name = rule.get("record").asText();
            check(api, "rule " + name + " expr", rule.get("expr").asText())
                .ifPresent(problems::add);
            check(api, "recorded " + name, name).ifPresent(problems::add);
          }
        }
      }
      problems.addAll(unhealthyRules(api, ruleFile));
      assertEquals(List.of(), problems, queries + " queries checked");
      assertTrue(queries > 30, "found " + queries + " queries");
    } finally {
      stop.set(true);
      traffic.join(10_000);
      if (prometheus != null) {
        stopProcess(prometheus);
      }
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

  private Process startPrometheus(Path rules, int port) throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("prometheus"));
    // The deployed groups evaluate every 30 s; the copy evaluates every second so the test is
    // quick.
    Path fastRules = dir.resolve("rules.yaml");
    Files.writeString(fastRules, Files.readString(rules).replace("interval: 30s", "interval: 1s"));
    InetSocketAddress admin = node.proxy().adminAddress();
    Files.writeString(
        dir.resolve("prometheus.yml"),
        """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files:
          - %s
        scrape_configs:
          - job_name: %s
            static_configs:
              - targets: ["127.0.0.1:%d"]
        """
            .formatted(fastRules, JOB, admin.getPort()));
    return new ProcessBuilder(
            PROMETHEUS.toString(),
            "--config.file=" + dir.resolve("prometheus.yml"),
            "--storage.tsdb.path=" + dir.resolve("data"),
            "--web.listen-address=127.0.0.1:" + port,
            "--log.level=warn")
        .redirectErrorStream(true)
        .redirectOutput(dir.resolve("prometheus.log").toFile())
        .start();
  }

  private static void stopProcess(Process p) throws InterruptedException {
    p.destroy();
    if (!p.waitFor(15, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
  }

  private void awaitData(String api, Process prometheus, String query) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
    String last = "";
    while (System.nanoTime() < deadline) {
      assertTrue(prometheus.isAlive(), "prometheus exited: " + prometheusLog());
      try {
        JsonNode r = query(api, query);
        if (r.path("data").path("result").size() > 0) {
          return;
        }
        last = r.toString();
      } catch (IOException e) {
        last = e.toString(); // not listening yet
      }
      Thread.sleep(500);
    }
    throw new AssertionError("no data for " + query + ": " + last + "\n" + prometheusLog());
  }

  private String prometheusLog() {
    try {
      return Files.readString(tmp.resolve("prometheus/prometheus.log"));
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** Null-free: empty when the query returned at least one non-NaN sample. */
  private java.util.Optional<String> check(String api, String where, String expr)
      throws IOException, InterruptedException {
    JsonNode r = query(api, expr);
    if (!"success".equals(r.path("status").asText())) {
      return java.util.Optional.of(where + ": " + r + " for " + expr);
    }
    for (JsonNode sample : r.path("data").path("result")) {
      String value = sample.path("value").path(1).asText();
      if (!value.equals("NaN")) {
        return java.util.Optional.empty();
      }
    }
    return java.util.Optional.of(where + ": no data (" + r.path("data") + ") for " + expr);
  }

  /** Grafana's {@code label_values(selector, label)}, asked the way Grafana asks it. */
  private java.util.Optional<String> checkLabelValues(String api, String where, String q)
      throws IOException, InterruptedException {
    Matcher m = LABEL_VALUES.matcher(q);
    if (!m.matches()) {
      return java.util.Optional.of(where + ": not label_values(...): " + q);
    }
    JsonNode r = get(api + "/api/v1/label/" + m.group(2) + "/values?match[]=" + encode(m.group(1)));
    if (r.path("data").size() == 0) {
      return java.util.Optional.of(where + ": no values: " + r + " for " + q);
    }
    return java.util.Optional.empty();
  }

  private List<String> unhealthyRules(String api, JsonNode ruleFile)
      throws IOException, InterruptedException {
    Map<String, String> health = new LinkedHashMap<>();
    for (JsonNode group : get(api + "/api/v1/rules").path("data").path("groups")) {
      for (JsonNode rule : group.path("rules")) {
        health.put(rule.path("name").asText(), rule.path("health").asText());
      }
    }
    List<String> problems = new ArrayList<>();
    for (JsonNode group : ruleFile.get("groups")) {
      for (JsonNode rule : group.get("rules")) {
        String name = rule.has("record") ? rule.get("record").asText() : rule.get("alert").asText();
        if (!"ok".equals(health.get(name))) {
          problems.add("rule " + name + " health " + health.get(name));
        }
      }
    }
    return problems;
  }

  private JsonNode query(String api, String expr) throws IOException, InterruptedException {
    return get(api + "/api/v1/query?query=" + encode(expr));
  }

  private JsonNode get(String url) throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString());
    return JSON.readTree(r.body());
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

  /** Template variables as "All" and Grafana's rate interval as a window 1 s scrapes fill. */
  static String substitute(String expr) {
    String s =
        expr.replace("$__rate_interval", "1m")
            .replace("${node}", ".*")
            .replace("$node", ".*")
            .replace("${namespace}", ".*")
            .replace("$namespace", ".*")
            .replace("${workload}", ".*")
            .replace("$workload", ".*");
    assertFalse(s.contains("$"), "unsubstituted variable in " + expr);
    return s;
  }

  private static List<JsonNode> panels(JsonNode dashboard) {
    List<JsonNode> out = new ArrayList<>();
    for (JsonNode p : dashboard.path("panels")) {
      out.add(p);
      p.path("panels").forEach(out::add); // panels inside collapsed rows
    }
    return out;
  }

  private static List<Path> dashboards(Path deploy) throws IOException {
    try (Stream<Path> files = Files.list(deploy.resolve("grafana"))) {
      // The control plane's dashboard is checked against a control plane (control module).
      List<Path> out =
          files
              .filter(f -> f.toString().endsWith(".json"))
              .filter(f -> !f.getFileName().toString().equals("control-plane.json"))
              .sorted()
              .toList();
      assertEquals(3, out.size(), out.toString());
      return out;
    }
  }

  private static Path deployDir() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("deploy/grafana"))) {
      p = p.getParent();
    }
    assertTrue(p != null, "deploy/grafana not found above the working directory");
    return p.resolve("deploy");
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }

  private static int run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).inheritIO().start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return -1;
    }
    return p.exitValue();
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
