package dev.nodemesh.scripts.demo;

import dev.nodemesh.scripts.local.Names;
import dev.nodemesh.scripts.local.PodProcess;
import dev.nodemesh.scripts.local.StateFile;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
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
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The demo's L7 part: drives a run of {@code examples/l7} (two nodes, Service {@code web} with a
 * canary HTTPRoute, an HTTPFault, a rate-limiting TrafficPolicy and L7 AuthorizationPolicies) from
 * its client pod with curl, as an app in the pod would, and prints what each resource did: the
 * split per version, the fault's 503s, the rate limit's 429s and the denied requests with the node
 * that denied them.
 *
 * <p>The figures come back as a {@link Figures} record so {@code L7ExampleRootTest} checks the very
 * numbers the demo prints. Limits: it knows the example's names ({@code client}, Service {@code
 * web}, paths {@code /flaky}, {@code /limited}, {@code /admin}, pods named {@code
 * web-<version>-*}); run it on that example only.
 *
 * <p>Usage: {@code L7Tour RUN_DIR} (the run directory of {@code nodemesh local up -f examples/l7}).
 */
public final class L7Tour {
  /** Requests of each part; the split's margin in the test is binomial over {@link #SPLIT}. */
  public static final int SPLIT = 200;

  public static final int FAULT = 100;
  public static final int LIMITED = 20;
  public static final int ADMIN = 20;
  public static final int WRITES = 5;

  private static final Pattern VERSION = Pattern.compile("^web-(v\\d+)-");
  private static final Duration BATCH_TIMEOUT = Duration.ofSeconds(120);

  /** Answers of one batch: how many of each "status pod" pair (pod empty for local answers). */
  public record Tally(Map<String, Integer> counts) {
    public Tally {
      counts = Map.copyOf(counts);
    }

    /**
     * Reads curl's {@code -w '%{http_code} %header{x-served-by}\n'} lines. A transfer that failed
     * has status 000.
     */
    public static Tally parse(String curlOutput) {
      Map<String, Integer> counts = new TreeMap<>();
      for (String line : curlOutput.split("\n")) {
        String l = line.strip();
        if (l.matches("\\d{3}( \\S+)?")) {
          counts.merge(l, 1, Integer::sum);
        }
      }
      return new Tally(counts);
    }

    public int total() {
      return counts.values().stream().mapToInt(Integer::intValue).sum();
    }

    /** Answers with this status, from any pod or from a proxy. */
    public int status(int status) {
      String s = code(status);
      return counts.entrySet().stream()
          .filter(e -> e.getKey().equals(s) || e.getKey().startsWith(s + " "))
          .mapToInt(Map.Entry::getValue)
          .sum();
    }

    /** Answers the proxy gave itself (no x-served-by from an app) with this status. */
    public int local(int status) {
      return counts.getOrDefault(code(status), 0);
    }

    private static String code(int status) {
      return String.format(Locale.ROOT, "%03d", status);
    }

    /** 200s per serving pod. */
    public Map<String, Integer> servedByPod() {
      Map<String, Integer> out = new TreeMap<>();
      counts.forEach(
          (k, v) -> {
            if (k.startsWith("200 ")) {
              out.merge(k.substring(4), v, Integer::sum);
            }
          });
      return out;
    }

    /** 200s per version, read from pod names {@code web-<version>-*}. */
    public Map<String, Integer> servedByVersion() {
      Map<String, Integer> out = new TreeMap<>();
      servedByPod()
          .forEach(
              (pod, n) -> {
                Matcher m = VERSION.matcher(pod);
                out.merge(m.find() ? m.group(1) : pod, n, Integer::sum);
              });
      return out;
    }
  }

  /**
   * What the tour measured.
   *
   * @param denialsByNode growth of {@code nodemesh_policy_denials_total} on each node's proxy over
   *     the authorization part
   */
  public record Figures(
      Tally split,
      Tally fault,
      Tally limited,
      Tally admin,
      Tally writes,
      Map<String, Double> denialsByNode) {}

  private final StateFile.State state;
  private final Path work;

  L7Tour(StateFile.State state, Path work) {
    this.state = state;
    this.work = work;
  }

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: L7Tour RUN_DIR");
      System.exit(2);
    }
    run(Path.of(args[0]), System.out);
  }

  /** Drives the example of the run in {@code runDir} and prints the report to {@code out}. */
  public static Figures run(Path runDir, PrintStream out) throws IOException {
    StateFile file = StateFile.load(runDir);
    if (file == null || file.state().nodes() == null) {
      throw new IOException("no local run with nodes in " + runDir);
    }
    Path work = Files.createTempDirectory("nodemesh-l7tour");
    try {
      L7Tour tour = new L7Tour(file.state(), work);
      Figures f = tour.measure();
      tour.print(f, out);
      return f;
    } finally {
      try (var s = Files.list(work)) {
        for (Path p : s.toList()) {
          Files.deleteIfExists(p);
        }
      }
      Files.deleteIfExists(work);
    }
  }

  Figures measure() throws IOException {
    Tally split = batch(SPLIT, "http://web/", List.of());
    Tally fault = batch(FAULT, "http://web/flaky", List.of());
    Tally limited = batch(LIMITED, "http://web/limited", List.of());
    Map<String, Double> before = denials();
    Tally admin = batch(ADMIN, "http://web/admin/users", List.of());
    Tally writes = batch(WRITES, "http://web/", List.of("-X", "POST", "-d", "note=hello"));
    Map<String, Double> after = denials();
    Map<String, Double> delta = new LinkedHashMap<>();
    after.forEach((node, v) -> delta.put(node, v - before.getOrDefault(node, 0.0)));
    return new Figures(split, fault, limited, admin, writes, delta);
  }

  /**
   * {@code n} requests from the client pod in one curl (keep-alive, one after another), each
   * printing its status and the serving pod's {@code x-served-by} (absent on the proxy's own
   * answers).
   */
  private Tally batch(int n, String url, List<String> extra) throws IOException {
    Path config = work.resolve("batch.curl");
    StringBuilder sb = new StringBuilder();
    for (int i = 0; i < n; i++) {
      sb.append("url = \"").append(url).append("\"\noutput = \"/dev/null\"\n");
    }
    Files.writeString(config, sb.toString(), StandardCharsets.UTF_8);
    List<String> argv =
        new ArrayList<>(
            List.of(
                "ip",
                "netns",
                "exec",
                Names.podNetns(state.prefix(), "default", "client"),
                "curl",
                "-sS",
                "--max-time",
                "20",
                "-w",
                "%{http_code} %header{x-served-by}\\n"));
    argv.addAll(extra);
    argv.addAll(List.of("-K", config.toString()));
    // In eBPF mode curl runs in the client's node's cgroup, as the pod's own app would.
    argv = PodProcess.inCgroup(PodProcess.cgroupOf(state, nodeOf("client")), argv);
    Process p =
        new ProcessBuilder(argv)
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start();
    try {
      // curl prints one short line per request: reading all before waiting cannot block it.
      String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(BATCH_TIMEOUT.toSeconds(), TimeUnit.SECONDS)) {
        throw new IOException("curl did not finish in " + BATCH_TIMEOUT + ": " + argv);
      }
      // A non-zero exit (a reset transfer) is one of the answers, counted as 000.
      return Tally.parse(output);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted: " + argv, e);
    } finally {
      p.destroyForcibly();
    }
  }

  /** Sum of nodemesh_policy_denials_total on each node's proxy. */
  private Map<String, Double> denials() throws IOException {
    Map<String, Double> out = new LinkedHashMap<>();
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    for (StateFile.NodeRecord node : nodes()) {
      String body;
      try {
        body =
            http.send(
                    HttpRequest.newBuilder(URI.create("http://" + node.admin() + "/metrics"))
                        .timeout(Duration.ofSeconds(10))
                        .build(),
                    HttpResponse.BodyHandlers.ofString())
                .body();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IOException("interrupted scraping " + node.admin(), e);
      }
      out.put(node.name(), sumOf(body, "nodemesh_policy_denials_total"));
    }
    return out;
  }

  static double sumOf(String scrape, String metric) {
    return scrape
        .lines()
        .filter(l -> l.startsWith(metric + "{") || l.startsWith(metric + " "))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  private List<StateFile.NodeRecord> nodes() {
    List<StateFile.NodeRecord> nodes = state.nodes();
    return nodes == null ? List.of() : nodes;
  }

  /** The node a pod runs on, from the run's journal. */
  private String nodeOf(String pod) {
    for (StateFile.NodeRecord n : nodes()) {
      if (n.pods().contains(pod)) {
        return n.name();
      }
    }
    return "?";
  }

  void print(Figures f, PrintStream out) {
    out.println();
    out.println(
        "== L7 across two nodes (examples/l7): the client pod (node-1) calls http://web/ by name");
    out.printf(
        Locale.ROOT,
        "canary split, HTTPRoute web (90 %% to web-v1, 10 %% to web-v2), %d GET /:%n",
        f.split().total());
    Map<String, Integer> pods = f.split().servedByPod();
    f.split()
        .servedByVersion()
        .forEach(
            (version, n) -> {
              StringBuilder where = new StringBuilder();
              pods.forEach(
                  (pod, c) -> {
                    if (pod.startsWith("web-" + version + "-")) {
                      where.append(' ').append(pod).append(" (").append(nodeOf(pod)).append(") ");
                      where.append(c);
                    }
                  });
              out.printf(
                  Locale.ROOT,
                  "  %-4s %4d  %5.1f %%  %s%n",
                  version,
                  n,
                  100.0 * n / Math.max(1, f.split().total()),
                  where.toString().strip());
            });
    int splitOther = f.split().total() - f.split().status(200);
    if (splitOther > 0) {
      out.printf(Locale.ROOT, "  not 200: %d %s%n", splitOther, f.split().counts());
    }
    out.println(
        "  The proxy on node-1 picks a backend per request by weight; v1 prefers its replica on"
            + " node-1\n  (locality), v2 runs only on node-2, so its share crosses the mTLS"
            + " tunnel.");
    out.printf(
        Locale.ROOT,
        "fault, HTTPFault flaky (abort 503 on 25 %% of /flaky), %d GET /flaky: %d answered 503 by"
            + " the proxy, %d reached web-v1%n",
        f.fault().total(),
        f.fault().local(503),
        f.fault().status(200));
    out.printf(
        Locale.ROOT,
        "rate limit, TrafficPolicy web-limited (10 tokens an hour), %d GET /limited: %d served,"
            + " %d answered 429%n",
        f.limited().total(),
        f.limited().status(200),
        f.limited().local(429));
    out.println(
        "authorization, AuthorizationPolicy web-no-admin (DENY /admin*) and web-readers (ALLOW"
            + " GET, HEAD from sa/client):");
    out.printf(
        Locale.ROOT,
        "  %d GET /admin/users: %d denied (403); %d POST /: %d denied (403)%n",
        f.admin().total(),
        f.admin().local(403),
        f.writes().total(),
        f.writes().local(403));
    StringBuilder byNode = new StringBuilder();
    f.denialsByNode()
        .forEach(
            (node, n) -> byNode.append(String.format(Locale.ROOT, " %s %d,", node, Math.round(n))));
    out.println(
        "  denials counted by each node's proxy:"
            + byNode.substring(0, Math.max(0, byNode.length() - 1)));
    out.println(
        "  A request for a pod on node-2 is checked by node-2's proxy inside the tunnel, with the"
            + " caller's\n  SPIFFE ID from mTLS; one for web-v1-a (node-1) by node-1's proxy"
            + " before it leaves.");
  }
}
