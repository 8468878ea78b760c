package dev.nodemesh.scripts.demo;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.awt.BasicStroke;
import java.io.IOException;
import java.io.PrintStream;
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
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.time.FixedMillisecond;
import org.jfree.data.time.TimeSeries;
import org.jfree.data.time.TimeSeriesCollection;
import org.jspecify.annotations.Nullable;

/**
 * The demo's latency report from a real Prometheus: the p50/p90/p99 added connect latency per node,
 * with the very PromQL of the "Node latency" dashboard's per-node panels (read from {@code
 * deploy/grafana/node-latency.json}, so the demo and the dashboard cannot drift apart), printed as
 * a table over the whole run, and a PNG chart of the same queries over the run.
 *
 * <p>Usage: {@code LatencyReport PROMETHEUS_URL DASHBOARD_JSON START_EPOCH END_EPOCH OUT_PNG}.
 */
public final class LatencyReport {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final String PANEL_PREFIX = "Added connect latency p";

  /** One dashboard panel query per quantile, in the order p50, p90, p99. */
  record Quantile(String name, String expr) {}

  private final String prometheus;
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  LatencyReport(String prometheus) {
    this.prometheus = prometheus;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 5) {
      System.err.println(
          "usage: LatencyReport PROMETHEUS_URL DASHBOARD_JSON START_EPOCH END_EPOCH OUT_PNG");
      System.exit(2);
    }
    System.setProperty("java.awt.headless", "true");
    List<Quantile> quantiles = quantiles(JSON.readTree(Path.of(args[1]).toFile()));
    long start = Long.parseLong(args[2]);
    long end = Long.parseLong(args[3]);
    LatencyReport report = new LatencyReport(args[0]);
    report.table(quantiles, end, end - start, System.out);
    Path png = Path.of(args[4]);
    report.chart(quantiles, start, end, png);
    System.out.println("  chart: " + png);
  }

  /** The per-node quantile panels of the Node latency dashboard. */
  static List<Quantile> quantiles(JsonNode dashboard) {
    List<Quantile> out = new ArrayList<>();
    for (JsonNode p : dashboard.path("panels")) {
      String title = p.path("title").asText();
      if (title.startsWith(PANEL_PREFIX) && title.endsWith(" per node")) {
        String name = "p" + title.substring(PANEL_PREFIX.length(), title.indexOf(' ', 23));
        out.add(new Quantile(name, p.path("targets").get(0).path("expr").asText()));
      }
    }
    if (out.size() != 3) {
      throw new IllegalStateException("expected the p50/p90/p99 per-node panels, found " + out);
    }
    return out;
  }

  /** The dashboard's query with "All" nodes and a rate window of {@code window}. */
  static String substitute(String expr, String window) {
    return expr.replace("$__rate_interval", window).replace("${node}", ".*").replace("$node", ".*");
  }

  /** One row per node: each quantile over the last {@code seconds} before {@code at}. */
  void table(List<Quantile> quantiles, long at, long seconds, PrintStream out)
      throws IOException, InterruptedException {
    String window = Math.max(seconds, 5) + "s";
    Map<String, Map<String, Double>> rows = new TreeMap<>();
    for (Quantile q : quantiles) {
      JsonNode r =
          get("/api/v1/query?time=" + at + "&query=" + encode(substitute(q.expr(), window)));
      for (JsonNode s : r.path("data").path("result")) {
        String node = s.path("metric").path("node").asText("?");
        rows.computeIfAbsent(node, n -> new LinkedHashMap<>())
            .put(q.name(), Double.parseDouble(s.path("value").get(1).asText()));
      }
    }
    out.printf("  %-20s", "node");
    quantiles.forEach(q -> out.printf(" %12s", q.name()));
    out.println();
    if (rows.isEmpty()) {
      out.println("  (no data: did traffic flow through the proxy?)");
    }
    rows.forEach(
        (node, values) -> {
          out.printf("  %-20s", node);
          quantiles.forEach(q -> out.printf(" %12s", micros(values.get(q.name()))));
          out.println();
        });
  }

  /** Every quantile of every node over the run, one point per second, as a PNG. */
  void chart(List<Quantile> quantiles, long start, long end, Path png)
      throws IOException, InterruptedException {
    TimeSeriesCollection data = new TimeSeriesCollection();
    for (Quantile q : quantiles) {
      JsonNode r =
          get(
              "/api/v1/query_range?start="
                  + start
                  + "&end="
                  + end
                  + "&step=1&query="
                  + encode(substitute(q.expr(), "5s")));
      for (JsonNode s : r.path("data").path("result")) {
        TimeSeries series =
            new TimeSeries(s.path("metric").path("node").asText("?") + " " + q.name());
        for (JsonNode point : s.path("values")) {
          double v = Double.parseDouble(point.get(1).asText());
          if (!Double.isNaN(v)) {
            long millis = Math.round(point.get(0).asDouble() * 1000);
            series.addOrUpdate(new FixedMillisecond(millis), v * 1e6);
          }
        }
        data.addSeries(series);
      }
    }
    JFreeChart chart =
        ChartFactory.createTimeSeriesChart(
            "nodemesh: added connect latency per node (Prometheus, 5 s windows)",
            "time",
            "latency (µs)",
            data,
            true,
            false,
            false);
    XYPlot plot = chart.getXYPlot();
    XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
    for (int i = 0; i < data.getSeriesCount(); i++) {
      renderer.setSeriesStroke(i, new BasicStroke(2f));
    }
    plot.setRenderer(renderer);
    Files.createDirectories(png.toAbsolutePath().getParent());
    ChartUtils.saveChartAsPNG(png.toFile(), chart, 1000, 500);
  }

  private static String micros(@Nullable Double seconds) {
    if (seconds == null || seconds.isNaN()) {
      return "-";
    }
    return String.format(Locale.ROOT, "%.0f µs", seconds * 1e6);
  }

  private JsonNode get(String path) throws IOException, InterruptedException {
    HttpResponse<String> r =
        http.send(
            HttpRequest.newBuilder(URI.create(prometheus + path))
                .timeout(Duration.ofSeconds(10))
                .build(),
            HttpResponse.BodyHandlers.ofString());
    JsonNode body = JSON.readTree(r.body());
    if (!"success".equals(body.path("status").asText())) {
      throw new IOException("prometheus " + path + ": " + r.body());
    }
    return body;
  }

  private static String encode(String s) {
    return URLEncoder.encode(s, StandardCharsets.UTF_8);
  }
}
