package dev.nodemesh.proxy.accesslog;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class AccessLogTest {
  private static final ObjectMapper JSON = new ObjectMapper();
  private static final TrafficLabels LABELS =
      new TrafficLabels(
          "source",
          "client",
          "default",
          "echo-1",
          "default",
          "echo.default",
          "spiffe://cluster.local/ns/default/sa/client",
          "unknown");
  private static final Clock CLOCK =
      Clock.fixed(Instant.parse("2026-11-22T10:00:00.123Z"), ZoneOffset.UTC);

  @Test
  void aConnectionBecomesOneJsonLineWithEveryField() throws Exception {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    AtomicLong nanos = new AtomicLong(1_000_000);
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AccessLog log =
        AccessLog.start(out, true, 1.0, () -> 0.5, 16, "node-a", registry, CLOCK, nanos::get);
    ConnectionLog c = log.begin(LABELS);
    assertNotNull(c);
    c.originalDestination(new InetSocketAddress("10.96.0.10", 80))
        .upstream(new InetSocketAddress("10.0.0.11", 8080))
        .upstreamConnected(250_000);
    nanos.addAndGet(3_500_000);
    c.bytes(123, 4567).finish();
    c.finish(); // a second finish writes nothing
    ConnectionLog refused = log.begin(LABELS);
    assertNotNull(refused);
    refused.flag(ResponseFlag.NR).flag(ResponseFlag.DENY).authz("deny", "ns/default/deny-all");
    refused.sourcePrincipal("spiffe://cluster.local/ns/default/sa/client").finish();
    log.close();

    List<JsonNode> lines = lines(out);
    assertEquals(2, lines.size(), out.toString(StandardCharsets.UTF_8));
    JsonNode l = lines.get(0);
    assertEquals("2026-11-22T10:00:00.123Z", l.get("start_time").asText());
    assertEquals(3500, l.get("duration_us").asLong());
    assertEquals(250, l.get("upstream_connect_us").asLong());
    assertEquals(123, l.get("bytes_sent").asLong());
    assertEquals(4567, l.get("bytes_received").asLong());
    assertEquals("source", l.get("reporter").asText());
    assertEquals("node-a", l.get("node").asText());
    assertEquals("client", l.get("source_workload").asText());
    assertEquals("default", l.get("source_namespace").asText());
    assertEquals("echo-1", l.get("destination_workload").asText());
    assertEquals("default", l.get("destination_namespace").asText());
    assertEquals("echo.default", l.get("destination_service").asText());
    assertEquals("10.96.0.10:80", l.get("original_destination").asText());
    assertEquals("10.0.0.11:8080", l.get("upstream_address").asText());
    assertEquals("-", l.get("response_flags").asText());
    // Optional fields nobody filled are left out, not written as null.
    for (String absent :
        List.of("source_principal", "authz_decision", "http_method", "http_status")) {
      assertFalse(l.has(absent), absent + " in " + l);
    }
    JsonNode r = lines.get(1);
    assertEquals("NR,DENY", r.get("response_flags").asText());
    assertEquals("deny", r.get("authz_decision").asText());
    assertEquals("ns/default/deny-all", r.get("authz_policy").asText());
    assertEquals("spiffe://cluster.local/ns/default/sa/client", r.get("source_principal").asText());
    assertFalse(r.has("upstream_connect_us"), r.toString());
    assertEquals(2.0, registry.get("nodemesh.access.log.written").counter().count());
  }

  @Test
  void samplingLogsTheConfiguredFractionWithASeededRandom() throws Exception {
    int connections = 20_000;
    for (double rate : new double[] {0.0, 0.1, 0.5, 1.0}) {
      Random random = new Random(42);
      AccessLog log =
          AccessLog.start(
              OutputStream.nullOutputStream(),
              true,
              rate,
              random::nextDouble,
              connections,
              "n",
              new SimpleMeterRegistry(),
              CLOCK,
              System::nanoTime);
      int sampled = 0;
      for (int i = 0; i < connections; i++) {
        if (log.begin(LABELS) != null) {
          sampled++;
        }
      }
      log.close();
      // Binomial(n, p): 4 standard deviations, and exact at 0 and 1.
      double sd = Math.sqrt(connections * rate * (1 - rate));
      assertTrue(
          Math.abs(sampled - connections * rate) <= 4 * sd,
          "rate " + rate + ": " + sampled + " of " + connections);
    }
  }

  @Test
  void offLogsNothing() {
    AccessLog off = AccessLog.off();
    assertFalse(off.enabled());
    assertNull(off.begin(LABELS));
    off.close();
    assertEquals("off", AccessLogSettings.parse("off", 1).toString());
    assertNull(AccessLogSettings.parse("stdout", 1).file());
    assertTrue(AccessLogSettings.parse("stdout", 1).enabled());
  }

  @Test
  void aFullQueueDropsAndCountsWithoutBlocking() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    CountDownLatch writing = new CountDownLatch(1);
    ByteArrayOutputStream sink = new ByteArrayOutputStream();
    Set<String> writers = java.util.concurrent.ConcurrentHashMap.newKeySet();
    // The writer blocks on its first write until released: a disk that has stalled.
    OutputStream stalled =
        new OutputStream() {
          @Override
          public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
          }

          @Override
          public void write(byte[] b, int off, int len) throws IOException {
            writers.add(Thread.currentThread().getName());
            writing.countDown();
            try {
              release.await();
            } catch (InterruptedException e) {
              throw new IOException(e);
            }
            sink.write(b, off, len);
          }
        };
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    int capacity = 8;
    AccessLog log =
        AccessLog.start(
            stalled, true, 1.0, () -> 0, capacity, "n", registry, CLOCK, System::nanoTime);
    ConnectionLog first = log.begin(LABELS);
    assertNotNull(first);
    first.finish();
    writing.await(); // the writer holds the first line and is stuck in write()
    int offered = 100;
    for (int i = 0; i < offered; i++) {
      ConnectionLog c = log.begin(LABELS);
      assertNotNull(c);
      c.bytes(i, i).finish(); // returns at once even though nothing is being written
    }
    double dropped = registry.get("nodemesh.access.log.dropped").counter().count();
    assertEquals(offered - capacity, dropped, "the queue held " + capacity);
    release.countDown();
    log.close();
    List<JsonNode> lines = lines(sink);
    assertEquals(1 + capacity, lines.size());
    Set<Long> kept = new TreeSet<>();
    lines.subList(1, lines.size()).forEach(l -> kept.add(l.get("bytes_sent").asLong()));
    assertEquals(Set.of(0L, 1L, 2L, 3L, 4L, 5L, 6L, 7L), kept, "the first lines stay, later drop");
    // Lines are written by the log's own thread, never by the (event-loop) caller of finish().
    assertEquals(Set.of("nodemesh-accesslog"), writers);
    assertEquals(1.0 + capacity, registry.get("nodemesh.access.log.written").counter().count());
  }

  private static List<JsonNode> lines(ByteArrayOutputStream out) throws IOException {
    List<JsonNode> lines = new ArrayList<>();
    for (String line : out.toString(StandardCharsets.UTF_8).split("\n")) {
      if (!line.isEmpty()) {
        lines.add(JSON.readTree(line));
      }
    }
    return lines;
  }
}
