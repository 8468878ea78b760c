package dev.nodemesh.proxy.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** A response broken off after its head is counted as incomplete, never as its status class. */
class HttpMetersTest {
  private static final TrafficLabels LABELS =
      new TrafficLabels("source", "client", "default", "bulk-1", "default", "bulk", "a", "b");

  @Test
  void anIncompleteResponseIsNotCountedAsItsStatusClass() {
    ProxyMetrics metrics = new ProxyMetrics("test-node");
    HttpMeters m = metrics.http(LABELS);
    m.record(200, 1_000, 10, 100, null);
    m.recordIncomplete(2_000, 10, 8_045_056);
    assertEquals(1, m.count(2));
    assertEquals(1, m.count(HttpMeters.INCOMPLETE));
    String scrape = metrics.scrape();
    assertTrue(
        scrape
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_http_requests_total{")
                        && l.contains("response_code_class=\"incomplete\"")
                        && l.endsWith(" 1.0")),
        scrape);
    assertTrue(
        scrape
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_http_requests_total{")
                        && l.contains("response_code_class=\"2xx\"")
                        && l.endsWith(" 1.0")),
        scrape);
  }
}
