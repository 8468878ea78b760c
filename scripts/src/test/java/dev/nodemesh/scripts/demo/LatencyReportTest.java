package dev.nodemesh.scripts.demo;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.sun.net.httpserver.HttpServer;
import java.io.ByteArrayOutputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.InetSocketAddress;
import java.net.URLDecoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The demo's latency table and chart: the queries are the Node latency dashboard's own per-node
 * p50/p90/p99 panels, asked of Prometheus' HTTP API (here a stub answering with canned JSON), and
 * the answers become one table row per node and a PNG.
 */
class LatencyReportTest {
  @TempDir Path tmp;

  @Test
  void theTableAndChartComeFromTheDashboardsQueries() throws Exception {
    Path dashboard = repo().resolve("deploy/grafana/node-latency.json");
    List<LatencyReport.Quantile> quantiles =
        LatencyReport.quantiles(new ObjectMapper().readTree(dashboard.toFile()));
    assertEquals(List.of("p50", "p90", "p99"), quantiles.stream().map(q -> q.name()).toList());
    assertTrue(quantiles.get(2).expr().contains("0.99"), quantiles.get(2).expr());

    List<String> asked = new CopyOnWriteArrayList<>();
    HttpServer stub = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 8);
    stub.createContext(
        "/api/v1/",
        ex -> {
          String query =
              URLDecoder.decode(ex.getRequestURI().getRawQuery(), StandardCharsets.UTF_8);
          asked.add(ex.getRequestURI().getPath() + " " + query);
          String body =
              ex.getRequestURI().getPath().endsWith("query_range")
                  ? "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"node\":\"node-1\"},\"values\":[[100,\"0.0002\"],[101,\"0.0003\"],[102,\"NaN\"]]}]}}"
                  : "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{\"node\":\"node-1\"},\"value\":[110,\"0.00025\"]}]}}";
          byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
          ex.sendResponseHeaders(200, bytes.length);
          try (OutputStream out = ex.getResponseBody()) {
            out.write(bytes);
          }
        });
    stub.start();
    try {
      System.setProperty("java.awt.headless", "true");
      LatencyReport report = new LatencyReport("http://127.0.0.1:" + stub.getAddress().getPort());
      ByteArrayOutputStream table = new ByteArrayOutputStream();
      report.table(quantiles, 110, 10, new PrintStream(table, true, StandardCharsets.UTF_8));
      String text = table.toString(StandardCharsets.UTF_8);
      assertTrue(text.contains("node-1"), text);
      assertTrue(text.contains("p99"), text);
      assertTrue(text.contains("250 µs"), text);
      Path png = tmp.resolve("run/latency.png");
      report.chart(quantiles, 100, 110, png);
      byte[] head = Arrays.copyOf(Files.readAllBytes(png), 8);
      assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, head);
    } finally {
      stub.stop(0);
    }
    // Three instant queries and three range queries, each the dashboard's expression with every
    // node and a concrete window.
    assertEquals(6, asked.size(), asked.toString());
    assertTrue(asked.stream().allMatch(a -> !a.contains("$")), asked.toString());
    assertTrue(
        asked.stream().anyMatch(a -> a.startsWith("/api/v1/query ") && a.contains("10s")),
        asked.toString());
  }

  private static Path repo() {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve("deploy/grafana"))) {
      p = p.getParent();
    }
    assertTrue(p != null, "deploy/grafana not found above the working directory");
    return p;
  }
}
