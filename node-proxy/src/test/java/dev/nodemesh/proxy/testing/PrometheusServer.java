package dev.nodemesh.proxy.testing;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLMapper;
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
import java.util.concurrent.atomic.AtomicInteger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A real Prometheus (the Debian package) for tests: scrapes its targets every second, evaluates a
 * copy of the rules files every second, listens on a free 127.0.0.1 port, stores in the given
 * directory, and is stopped by its PID by {@link #close()}. With it, {@link #dashboardProblems} and
 * {@link #ruleProblems} check a Grafana dashboard and a rules file the way Grafana and Prometheus
 * would run them. Used by every dashboard test (node proxy, security, control plane).
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
    return start(dir, Map.of(job, List.of(targetPort)), List.of(rules));
  }

  /**
   * Starts Prometheus scraping, for each job, its ports on 127.0.0.1, with {@code rules} (each
   * copied with its 30 s group interval made 1 s, so a test sees recorded series quickly).
   */
  public static PrometheusServer start(Path dir, Map<String, List<Integer>> jobs, List<Path> rules)
      throws IOException {
    Files.createDirectories(dir);
    StringBuilder ruleFiles = new StringBuilder();
    for (int i = 0; i < rules.size(); i++) {
      Path fast = dir.resolve("rules-" + i + ".yaml");
      Files.writeString(
          fast, Files.readString(rules.get(i)).replace("interval: 30s", "interval: 1s"));
      ruleFiles.append("  - ").append(fast).append('\n');
    }
    StringBuilder scrapes = new StringBuilder();
    jobs.forEach(
        (job, ports) -> {
          List<String> targets = new ArrayList<>();
          ports.forEach(p -> targets.add("\"127.0.0.1:" + p + "\""));
          scrapes
              .append("  - job_name: ")
              .append(job)
              .append("\n    static_configs:\n      - targets: [")
              .append(String.join(", ", targets))
              .append("]\n");
        });
    Files.writeString(
        dir.resolve("prometheus.yml"),
        """
        global:
          scrape_interval: 1s
          evaluation_interval: 1s
        rule_files:
        %sscrape_configs:
        %s"""
            .formatted(ruleFiles, scrapes));
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

  /** The repository's {@code deploy/} directory, found above the working directory. */
  public static Path deployDir() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("deploy/grafana"))) {
      p = p.getParent();
    }
    if (p == null) {
      throw new AssertionError("deploy/grafana not found above the working directory");
    }
    return p.resolve("deploy");
  }

  /**
   * A dashboard query as Grafana would send it with every template variable at "All" ({@code .*})
   * and {@code $__rate_interval} as a window that 1 s scrapes fill.
   */
  public static String allValues(String expr) {
    String s = expr.replace("$__rate_interval", "1m");
    for (String v : List.of("node", "namespace", "workload", "instance")) {
      s = s.replace("${" + v + "}", ".*").replace("$" + v, ".*");
    }
    if (s.contains("$")) {
      throw new AssertionError("unsubstituted variable in " + expr);
    }
    return s;
  }

  /** {@code promtool check rules} on {@code rules}: its exit status (-1 when it hung). */
  public static int promtoolCheckRules(Path rules) throws IOException, InterruptedException {
    Process p =
        new ProcessBuilder(PROMTOOL.toString(), "check", "rules", rules.toString())
            .inheritIO()
            .start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return -1;
    }
    return p.exitValue();
  }

  /**
   * Every template variable ({@code label_values}) and every panel query of {@code dashboard}
   * (rows' panels included), with the variables at "All" ({@link #allValues}): a problem for each
   * that fails or returns no non-NaN sample. Adds the number of queries asked to {@code counted}.
   */
  public List<String> dashboardProblems(Path dashboard, AtomicInteger counted)
      throws IOException, InterruptedException {
    JsonNode d = JSON.readTree(dashboard.toFile());
    String file = dashboard.getFileName().toString();
    List<String> problems = new ArrayList<>();
    for (JsonNode v : d.path("templating").path("list")) {
      if (v.path("type").asText().equals("query")) {
        counted.incrementAndGet();
        String q = allValues(v.path("query").path("query").asText(v.path("query").asText()));
        checkLabelValues(file + " variable " + v.get("name"), q).ifPresent(problems::add);
      }
    }
    List<JsonNode> panels = new ArrayList<>();
    for (JsonNode p : d.path("panels")) {
      panels.add(p);
      p.path("panels").forEach(panels::add); // panels inside collapsed rows
    }
    for (JsonNode panel : panels) {
      for (JsonNode target : panel.path("targets")) {
        counted.incrementAndGet();
        String where = file + " \"" + panel.path("title").asText() + "\"";
        check(where, allValues(target.path("expr").asText())).ifPresent(problems::add);
      }
    }
    return problems;
  }

  /**
   * Every recording rule of {@code rules}, its expression and the series it records, returns data;
   * every rule (alerts too) is loaded with health "ok". Adds the queries asked to {@code counted}.
   */
  public List<String> ruleProblems(Path rules, AtomicInteger counted)
      throws IOException, InterruptedException {
    JsonNode ruleFile = new YAMLMapper().readTree(rules.toFile());
    List<String> problems = new ArrayList<>();
    for (JsonNode group : ruleFile.get("groups")) {
      for (JsonNode rule : group.get("rules")) {
        if (rule.has("record")) {
          counted.addAndGet(2);
          String name = rule.get("record").asText();
          check("rule " + name + " expr", rule.get("expr").asText()).ifPresent(problems::add);
          check("recorded " + name, name).ifPresent(problems::add);
        }
      }
    }
    problems.addAll(unhealthyRules(ruleFile));
    return problems;
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
