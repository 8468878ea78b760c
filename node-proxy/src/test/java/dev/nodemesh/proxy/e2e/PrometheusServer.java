package dev.nodemesh.proxy.e2e;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Prometheus (the Debian package) for tests: scrapes one target every second, evaluates a
 * copy of a rules file every second, listens on a free 127.0.0.1 port, stores in the given
 * directory, and is stopped by its PID by {@link #close()}. The same approach as {@link
 * PrometheusDashboardsRootTest}, for other modules' tests (control plane dashboard).
 */
public final class PrometheusServer implements AutoCloseable {
  public static final Path PROMETHEUS = Path.of("/usr/bin/prometheus");
  public static final Path PROMTOOL = Path.of("/usr/bin/promtool");
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final Pattern LABEL_VALUES =
      Pattern.compile("label_values\\((.*),\\s*([a-z_]+)\\)");

  private final Process process;
  private final Path dir;
  private final String api;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  private PrometheusServer(Process process, Path dir, String api) {
    this.process = process;
    this.dir = dir;
    this.api = api;
  }

  /** Starts Prometheus scraping {@code 127.0.0.1:targetPort} as {@code job}. */
  public static PrometheusServer start(Path dir, String job, int targetPort, Path rules)
      throws IOException {
    Files.createDirectories(dir);
    Path fastRules = dir.resolve("rules.yaml");
    Files.writeString(fastRules, Files.readString(rules).replace("interval: 30s", "interval: 1s"));
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
            .formatted(fastRules, job, targetPort));
    int port = freePort();
    Process p =
        new ProcessBuilder(
                PROMETHEUS.toString(),
                "--config.file=" + dir.resolve("prometheus.yml"),
                "--storage.tsdb.path=" + dir.resolve("data"),
                "--web.listen-address=127.0.0.1:" + port,
                "--log.level=warn")
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve("prometheus.log").toFile())
            .start();
    return new PrometheusServer(p, dir, "http://127.0.0.1:" + port);
  }

  /** Waits (bounded) until {@code query} returns at least one series. */
  public void awaitData(String query, Duration timeout) throws Exception {
    long deadline = System.nanoTime() + timeout.toNanos();
    String last = "";
    while (System.nanoTime() < deadline) {
      if (!process.isAlive()) {
        throw new AssertionError("prometheus exited: " + log());
      }
      try {
        JsonNode r = query(query);
        if (r.path("data").path("result").size() > 0) {
          return;
        }
        last = r.toString();
      } catch (IOException e) {
        last = e.toString(); // not listening yet
      }
      Thread.sleep(500);
    }
    throw new AssertionError("no data for " + query + ": " + last + "\n" + log());
  }

  /** Empty when {@code expr} returned at least one non-NaN sample, else the problem. */
  public Optional<String> check(String where, String expr)
      throws IOException, InterruptedException {
    JsonNode r = query(expr);
    if (!"success".equals(r.path("status").asText())) {
      return Optional.of(where + ": " + r + " for " + expr);
    }
    for (JsonNode sample : r.path("data").path("result")) {
      if (!sample.path("value").path(1).asText().equals("NaN")) {
        return Optional.empty();
      }
    }
    return Optional.of(where + ": no data (" + r.path("data") + ") for " + expr);
  }

  /** Grafana's {@code label_values(selector, label)}, asked the way Grafana asks it. */
  public Optional<String> checkLabelValues(String where, String q)
      throws IOException, InterruptedException {
    Matcher m = LABEL_VALUES.matcher(q);
    if (!m.matches()) {
      return Optional.of(where + ": not label_values(...): " + q);
    }
    JsonNode r = get("/api/v1/label/" + m.group(2) + "/values?match[]=" + encode(m.group(1)));
    return r.path("data").size() == 0
        ? Optional.of(where + ": no values: " + r + " for " + q)
        : Optional.empty();
  }

  /** Rules of {@code ruleFile} whose health Prometheus does not report as "ok". */
  public List<String> unhealthyRules(JsonNode ruleFile) throws IOException, InterruptedException {
    Map<String, String> health = new LinkedHashMap<>();
    for (JsonNode group : get("/api/v1/rules").path("data").path("groups")) {
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

  public JsonNode query(String expr) throws IOException, InterruptedException {
    return get("/api/v1/query?query=" + encode(expr));
  }

  public JsonNode get(String path) throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(api + path)).timeout(Duration.ofSeconds(10)).build(),
            HttpResponse.BodyHandlers.ofString());
    return JSON.readTree(r.body());
  }

  public String log() {
    try {
      return Files.readString(dir.resolve("prometheus.log"));
    } catch (IOException e) {
      return e.toString();
    }
  }

  /** Stops the process this object started (SIGTERM to its PID, then SIGKILL). */
  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(15, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(10, TimeUnit.SECONDS);
    }
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket()) {
      s.bind(new InetSocketAddress("127.0.0.1", 0));
      return s.getLocalPort();
    }
  }
}
