package dev.nodemesh.proxy.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Prometheus naming conventions over a real scrape with every meter registered: snake_case, a unit
 * suffix where the value has one, {@code _total} on counters, and every label in the documented set
 * ({@link ProxyMetrics#LABELS}), with no label value that is an address or a port.
 */
class MetricNamingTest {
  private static final Pattern SNAKE = Pattern.compile("[a-z][a-z0-9_]*");
  private static final Pattern SAMPLE = Pattern.compile("([^{ ]+)(?:\\{(.*)})? (\\S+)");
  private static final Pattern LABEL = Pattern.compile("([^=,]+)=\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Pattern IP_OR_PORT =
      Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}(:\\d+)?|\\d{2,5}|.*:.*:.*");
  private static final Set<String> TIME_WORDS =
      Set.of("duration", "lag", "age", "latency", "cpu", "time");

  private EventLoopGroup loops;
  private String scrape;

  @BeforeEach
  void setUp() {
    loops = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    ProxyMetrics metrics = new ProxyMetrics("test-node");
    ProxyHealth.bind(metrics, Map.of("io", loops), () -> 3, () -> 4, () -> true);
    for (String reporter : List.of("source", "destination")) {
      ConnectionMeters m =
          metrics.connection(
              new TrafficLabels(reporter, "client", "default", "echo-1", "default", "echo"));
      m.connected(120_000);
      m.sentBytes().increment(10);
      m.receivedBytes().increment(20);
      m.failed().increment();
      m.ended(2_000_000_000L);
    }
    scrape = metrics.scrape();
  }

  @AfterEach
  void tearDown() {
    loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }

  @Test
  void everyFamilyFollowsPrometheusConventions() {
    Map<String, String> types = types();
    List<String> problems = new ArrayList<>();
    types.forEach(
        (name, type) -> {
          if (!SNAKE.matcher(name).matches()) {
            problems.add(name + ": not snake_case");
          }
          String base = name.endsWith("_total") ? name.substring(0, name.length() - 6) : name;
          if (type.equals("counter") && !name.endsWith("_total")) {
            problems.add(name + ": a counter without _total");
          }
          if (!type.equals("counter") && name.endsWith("_total")) {
            problems.add(name + ": _total on a " + type);
          }
          if (type.equals("histogram") && !(base.endsWith("_seconds") || base.endsWith("_bytes"))) {
            problems.add(name + ": histogram without a unit");
          }
          if ((base.contains("bytes") || base.contains("memory")) && !base.endsWith("_bytes")) {
            problems.add(name + ": a size not in _bytes");
          }
          for (String w : TIME_WORDS) {
            if (List.of(base.split("_")).contains(w)
                && !(base.endsWith("_seconds") || base.endsWith("_seconds_max"))) {
              problems.add(name + ": a time not in _seconds");
            }
          }
          if (base.matches(".*_(ms|millis|milliseconds|nanos|micros|kb|mb)(_.*)?")) {
            problems.add(name + ": a non-base unit");
          }
        });
    assertEquals(List.of(), problems, scrape);
  }

  @Test
  void everyLabelIsDocumentedAndBounded() {
    Set<String> seen = new TreeSet<>();
    List<String> problems = new ArrayList<>();
    for (String line : scrape.split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      Matcher s = SAMPLE.matcher(line);
      assertTrue(s.matches(), line);
      String labels = s.group(2) == null ? "" : s.group(2);
      Matcher l = LABEL.matcher(labels);
      Map<String, String> values = new HashMap<>();
      while (l.find()) {
        String name = l.group(1).replaceFirst("^,", "");
        values.put(name, l.group(2));
      }
      seen.addAll(values.keySet());
      values.forEach(
          (k, v) -> {
            if (!ProxyMetrics.LABELS.contains(k)) {
              problems.add(s.group(1) + ": undocumented label " + k);
            }
            if (!k.equals("le") && !k.equals("event_loop") && IP_OR_PORT.matcher(v).matches()) {
              problems.add(s.group(1) + ": label " + k + "=" + v + " looks like an address");
            }
          });
      if (s.group(1).startsWith("nodemesh_") && !"test-node".equals(values.get("node"))) {
        problems.add(s.group(1) + ": no node label");
      }
    }
    assertEquals(List.of(), problems, scrape);
    assertTrue(seen.contains("destination_workload"), seen.toString());
  }

  @Test
  void latencyHistogramsResolveSubMillisecondAndMinutes() {
    String connect = "nodemesh_tcp_connect_duration_seconds_bucket{";
    assertTrue(scrape.contains(connect), scrape);
    List<String> les = new ArrayList<>();
    for (String line : scrape.split("\n")) {
      if (line.startsWith(connect) && line.contains("reporter=\"source\"")) {
        Matcher m = Pattern.compile("le=\"([^\"]+)\"").matcher(line);
        assertTrue(m.find(), line);
        les.add(m.group(1));
      }
    }
    assertEquals(Double.parseDouble(les.get(0)), 50e-6, 1e-12, les.toString());
    assertTrue(les.stream().anyMatch(le -> !le.equals("+Inf") && Double.parseDouble(le) == 60));
    // The 120 µs connect falls in the 250 µs bucket, not the 100 µs one.
    assertEquals(List.of("0", "1"), counts(connect, "source", List.of("1.0E-4", "2.5E-4")));
  }

  private List<String> counts(String prefix, String reporter, List<String> les) {
    List<String> out = new ArrayList<>();
    for (String le : les) {
      for (String line : scrape.split("\n")) {
        if (line.startsWith(prefix)
            && line.contains("reporter=\"" + reporter + "\"")
            && line.contains("le=\"" + le + "\"")) {
          out.add(line.substring(line.lastIndexOf(' ') + 1));
        }
      }
    }
    return out;
  }

  private Map<String, String> types() {
    Map<String, String> types = new HashMap<>();
    for (String line : scrape.split("\n")) {
      if (line.startsWith("# TYPE ")) {
        String[] p = line.split(" ");
        types.put(p[2], p[3]);
      }
    }
    assertTrue(types.size() > 10, scrape);
    return types;
  }
}
