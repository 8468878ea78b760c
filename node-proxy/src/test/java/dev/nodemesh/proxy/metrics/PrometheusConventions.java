package dev.nodemesh.proxy.metrics;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * Prometheus naming conventions checked over a scrape (text format): snake_case, a base-unit suffix
 * where the value has a unit, {@code _total} on counters and only on counters, every label in
 * {@link ProxyMetrics#LABELS}, no label value that looks like an address or port, and {@code node}
 * on every nodemesh series. Shared by the unit test and the root test that scrapes a live proxy, so
 * meters registered outside this package are held to the same rules.
 */
public final class PrometheusConventions {
  private static final Pattern SNAKE = Pattern.compile("[a-z][a-z0-9_]*");
  private static final Pattern SAMPLE = Pattern.compile("([^{ ]+)(?:\\{(.*)})? (\\S+)");
  private static final Pattern LABEL = Pattern.compile("([^=,]+)=\"((?:[^\"\\\\]|\\\\.)*)\"");
  private static final Pattern IP_OR_PORT =
      Pattern.compile("\\d{1,3}(\\.\\d{1,3}){3}(:\\d+)?|\\d{2,5}|.*:.*:.*");
  private static final Pattern METER_NAME = Pattern.compile("\"(nodemesh(?:\\.[a-z0-9_]+)+)\"");
  private static final Set<String> TIME_WORDS =
      Set.of("duration", "lag", "age", "latency", "cpu", "time");

  private PrometheusConventions() {}

  /** Problems with metric family names and types; empty when all follow the conventions. */
  public static List<String> nameProblems(String scrape) {
    Map<String, String> types = new HashMap<>();
    for (String line : scrape.split("\n")) {
      if (line.startsWith("# TYPE ")) {
        String[] p = line.split(" ");
        types.put(p[2], p[3]);
      }
    }
    List<String> problems = new ArrayList<>();
    if (types.isEmpty()) {
      problems.add("no # TYPE lines in the scrape");
    }
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
          // _max: Micrometer's gauge of the largest recent sample, next to a histogram.
          if ((base.contains("bytes") || base.contains("memory"))
              && !(base.endsWith("_bytes") || base.endsWith("_bytes_max"))) {
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
    return problems;
  }

  /**
   * Problems with labels: undocumented, address-like, or a nodemesh series without {@code node}.
   */
  public static List<String> labelProblems(String scrape, String node) {
    return labelProblems(scrape, ProxyMetrics.LABELS, node);
  }

  /**
   * As {@link #labelProblems(String, String)} against {@code documented} labels; {@code node} null
   * for a scrape whose series carry no node (the control plane's).
   */
  public static List<String> labelProblems(
      String scrape, List<String> documented, @Nullable String node) {
    List<String> problems = new ArrayList<>();
    for (String line : scrape.split("\n")) {
      if (line.isEmpty() || line.startsWith("#")) {
        continue;
      }
      Matcher s = SAMPLE.matcher(line);
      if (!s.matches()) {
        problems.add("unparsable sample: " + line);
        continue;
      }
      Map<String, String> values = labels(s.group(2) == null ? "" : s.group(2));
      values.forEach(
          (k, v) -> {
            if (!documented.contains(k)) {
              problems.add(s.group(1) + ": undocumented label " + k);
            }
            if (!k.equals("le") && !k.equals("event_loop") && IP_OR_PORT.matcher(v).matches()) {
              problems.add(s.group(1) + ": label " + k + "=" + v + " looks like an address");
            }
          });
      if (node != null && s.group(1).startsWith("nodemesh_") && !node.equals(values.get("node"))) {
        problems.add(s.group(1) + ": no node label");
      }
    }
    return problems;
  }

  /**
   * The meter names (Micrometer's dotted form, {@code "nodemesh.x.y"}) written as string literals
   * in the Java sources under {@code sourceRoot}: every meter a module can register.
   */
  public static Set<String> meterNamesIn(Path sourceRoot) throws IOException {
    Set<String> names = new TreeSet<>();
    try (Stream<Path> files = Files.walk(sourceRoot)) {
      for (Path f : files.filter(f -> f.toString().endsWith(".java")).toList()) {
        Matcher m = METER_NAME.matcher(Files.readString(f));
        while (m.find()) {
          names.add(m.group(1));
        }
      }
    }
    return names;
  }

  /**
   * The meter names of {@code names} with no family in {@code scrape} (a meter {@code a.b} is
   * exported as {@code a_b}, plus a unit or {@code _total}).
   */
  public static List<String> missingFamilies(String scrape, Set<String> names) {
    Set<String> families = new HashSet<>();
    for (String line : scrape.split("\n")) {
      if (line.startsWith("# TYPE ")) {
        families.add(line.split(" ")[2]);
      }
    }
    List<String> missing = new ArrayList<>();
    for (String name : names) {
      String prefix = name.replace('.', '_');
      if (families.stream().noneMatch(f -> f.equals(prefix) || f.startsWith(prefix + "_"))) {
        missing.add(name);
      }
    }
    return missing;
  }

  /** The {@code main/java} sources of {@code module}, found above the working directory. */
  public static Path mainSources(String module) {
    Path p = Path.of("").toAbsolutePath();
    while (p != null && !Files.isDirectory(p.resolve(module).resolve("src/main/java"))) {
      p = p.getParent();
    }
    if (p == null) {
      throw new AssertionError(module + "/src/main/java not found above the working directory");
    }
    return p.resolve(module).resolve("src/main/java");
  }

  static Map<String, String> labels(String text) {
    Matcher l = LABEL.matcher(text);
    Map<String, String> values = new HashMap<>();
    while (l.find()) {
      values.put(l.group(1).replaceFirst("^,", ""), l.group(2));
    }
    return values;
  }
}
