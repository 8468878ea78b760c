package dev.nodemesh.scripts.local;

import static dev.nodemesh.scripts.local.RootFixture.cgroupTree;
import static dev.nodemesh.scripts.local.RootFixture.pins;
import static dev.nodemesh.scripts.local.RootFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.NodeRecord;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code local upgrade-proxy} under fixed-rate load, in both interception modes: a client pod sends
 * a new connection per request to a Service at L4 and kept-alive requests to a Service at L7 (an
 * HTTPRoute) while the node's proxy is replaced twice in a row. No request may fail, and every
 * request the client saw answered must have been carried by a proxy: the proxies (old and new share
 * one access-log file) wrote exactly one line per L4 connection and one per L7 request. In eBPF
 * mode the upgrades must leave the pins and cgroup attachments as they were, and the proxy's
 * uninstall (what {@code local down} runs) must then leave none.
 *
 * <p>The load runs from before the first upgrade (both loads seen in the access log) until {@link
 * #TAIL} after the second, then is stopped ({@code loadgen --stop-file}); {@link #LOAD} only bounds
 * it. A fixed 150 s load made each case last as long whatever the upgrades took.
 */
@RootTest
class UpgradeRootTest {
  private static final Path BASIC = Path.of("../examples/basic").toAbsolutePath().normalize();
  private static final Duration WAIT = Duration.ofSeconds(120);

  /** The longest the load may run; it is stopped {@link #TAIL} after the upgrades. */
  private static final Duration LOAD = Duration.ofSeconds(150);

  /** Load through the last proxy after the second upgrade, before the load is stopped. */
  private static final Duration TAIL = Duration.ofSeconds(3);

  private static final int RATE = 20;

  /** Answered requests of each load seen in the access log before the first upgrade starts. */
  private static final int BEFORE = 2 * RATE;

  private static final String L4_URL = "http://10.96.0.10/";
  private static final String L7_URL = "http://10.96.0.20/";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path runDir;
  @TempDir Path work;
  private String prefix;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
  private final List<Process> loads = new ArrayList<>();

  @BeforeEach
  void prefix() {
    prefix = Names.randomPrefix();
  }

  @AfterEach
  void cleanUp() throws Exception {
    for (Process p : loads) {
      p.toHandle().descendants().forEach(ProcessHandle::destroyForcibly);
      p.destroyForcibly();
      p.waitFor(10, TimeUnit.SECONDS);
    }
    List<String> left = RootFixture.tearDown(runDir, prefix);
    assertEquals(List.of(), left, "left behind after down; output:\n" + log);
  }

  @Test
  @Timeout(value = 9, unit = TimeUnit.MINUTES) // 150 s of load, up and down on a busy machine
  void iptablesModeUpgradesTwiceWithoutAFailedOrBypassingRequest() throws Exception {
    upgradeTwiceUnderLoad(List.of(), null, null);
  }

  @Test
  @Timeout(value = 9, unit = TimeUnit.MINUTES)
  void ebpfModeUpgradesTwiceWithoutAFailedRequestAndUninstallLeavesNothing() throws Exception {
    try (TestCgroup cgroup = TestCgroup.create("upgrade");
        TestBpffs bpffs = TestBpffs.mount()) {
      Path pinDir = bpffs.path().resolve("nodemesh");
      List<String> kernels = pins(bpffs.path());
      try {
        List<String> flags =
            List.of("--intercept=ebpf", "--bpf-cgroup=" + cgroup.path(), "--bpf-pin-dir=" + pinDir);
        Snapshot before = upgradeTwiceUnderLoad(flags, cgroup, bpffs.path());
        assertEquals(
            before.pins(), pins(bpffs.path()), "the upgrades adopted every pin, added none");
        assertEquals(
            before.attachments(),
            attachments(cgroup.path()),
            "the upgrades swapped programs into the links, attached nothing twice");

        // The proxy's uninstall, as `local down` runs it: first the proxy stops.
        StateFile state = StateFile.load(runDir);
        for (Resource r : state.state().resources()) {
          if (r.kind() == Kind.process && r.name().startsWith("proxy:")) {
            assertTrue(Daemons.stop(r, Duration.ofSeconds(30)), "proxy stopped");
            state.remove(r);
          }
        }
        Resource bpf =
            state.state().resources().stream()
                .filter(r -> r.kind() == Kind.bpf)
                .findFirst()
                .orElseThrow();
        List<String> uninstall = bpf.argv();
        assertTrue(uninstall != null && uninstall.contains("--uninstall"), "" + uninstall);
        Exec.Result r = Exec.run(uninstall);
        assertTrue(r.ok(), "nodemesh proxy --uninstall: " + r.output());
        state.remove(bpf);
        assertEquals(kernels, pins(bpffs.path()), "bpffs after the proxy's uninstall");
        assertFalse(Files.exists(pinDir), "pin dir removed");
        assertEquals(List.of(), attachments(cgroup.path()), "cgroup after the proxy's uninstall");
      } finally {
        for (Process p : loads) {
          p.destroyForcibly();
          p.waitFor(10, TimeUnit.SECONDS);
        }
        RootFixture.tearDown(runDir, prefix);
        sh("rm", "-rf", "--", pinDir.toString());
      }
    }
  }

  /** eBPF state right after {@code up}, to compare with after the upgrades. */
  private record Snapshot(List<String> pins, List<String> attachments) {}

  private Snapshot upgradeTwiceUnderLoad(
      List<String> interception, @Nullable TestCgroup cgroup, @Nullable Path bpffs)
      throws Exception {
    Path config = config();
    Path accessLog = work.resolve("access.log");
    String hostMigrate = Files.readString(Path.of("/proc/sys/net/ipv4/tcp_migrate_req"));
    List<String> proxyArgs =
        new ArrayList<>(List.of("--workers=1", "--access-log=" + accessLog, "--drain-grace=10s"));
    proxyArgs.addAll(interception);
    long upStart = System.nanoTime();
    StateFile.State state = up(config, proxyArgs);
    Duration upTook = Duration.ofNanos(System.nanoTime() - upStart);
    NodeRecord node = state.nodes().get(0);
    Snapshot before =
        cgroup == null || bpffs == null
            ? new Snapshot(List.of(), List.of())
            : new Snapshot(pins(bpffs), attachments(cgroup.path()));

    String clientNetns = Names.podNetns(prefix, "default", "client");
    assertEquals(
        "1",
        Exec.check("ip", "netns", "exec", clientNetns, "cat", "/proc/sys/net/ipv4/tcp_migrate_req")
            .trim(),
        "queued connections migrate between the proxies' listeners in a pod");
    assertEquals(
        hostMigrate,
        Files.readString(Path.of("/proc/sys/net/ipv4/tcp_migrate_req")),
        "the proxy's own namespace is left alone");

    Path l4Json = work.resolve("l4.json");
    Path l7Json = work.resolve("l7.json");
    Path stop = work.resolve("stop-load");
    loads.add(loadgen(clientNetns, cgroup, l4Json, true, L4_URL, stop));
    loads.add(loadgen(clientNetns, cgroup, l7Json, false, L7_URL, stop));
    // Load before the first upgrade: both generators' requests answered through the proxy (their
    // JVMs start first), rather than a fixed sleep that a busy machine may not cover.
    List<JsonNode> early = awaitLines(accessLog, BEFORE, BEFORE, Duration.ofSeconds(60));
    assertTrue(
        countL4(early) >= BEFORE && countL7(early) >= BEFORE,
        "both loads ran before the first upgrade: "
            + countL4(early)
            + " L4, "
            + countL7(early)
            + " L7 lines\n"
            + output());

    long loadStart = System.nanoTime();
    List<Long> oldPids = new ArrayList<>();
    List<Long> newPids = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      List<LocalUpgrade.Upgraded> done;
      try {
        done =
            new LocalUpgrade(
                    new LocalUpgrade.Options(runDir, node.name(), WAIT, Duration.ofSeconds(40)),
                    out)
                .run();
      } catch (IOException e) {
        throw new AssertionError("upgrade " + (i + 1) + " failed; output:\n" + log + logs(), e);
      }
      assertEquals(1, done.size());
      oldPids.add(done.get(0).oldPid());
      newPids.add(done.get(0).newPid());
      assertFalse(ProcessHandle.of(done.get(0).oldPid()).isPresent(), "old proxy exited");
    }
    Duration upgrades = Duration.ofNanos(System.nanoTime() - loadStart);
    assertEquals(newPids.get(0), oldPids.get(1), "the second upgrade replaced the first's proxy");
    assertNotEquals(oldPids.get(0), newPids.get(1));
    StateFile.State after = StateFile.load(runDir).state();
    assertEquals(
        List.of(newPids.get(1)),
        after.resources().stream()
            .filter(r -> r.kind() == Kind.process && r.name().equals("proxy:" + node.name()))
            .map(Resource::pid)
            .toList(),
        "the journal records the running proxy only");
    assertTrue(
        upgrades.plus(TAIL).compareTo(LOAD) < 0,
        "both upgrades ran under load (took " + upgrades.toSeconds() + " s)");
    Thread.sleep(TAIL.toMillis()); // the last proxy carries load on its own for a while
    Files.writeString(stop, "");

    for (Process p : loads) {
      assertTrue(p.waitFor(LOAD.toSeconds() + 60, TimeUnit.SECONDS), "load generator finished");
      assertEquals(0, p.exitValue(), "load generator exit; output:\n" + output(p));
    }
    JsonNode l4 = JSON.readTree(Files.readString(l4Json));
    JsonNode l7 = JSON.readTree(Files.readString(l7Json));
    for (JsonNode r : List.of(l4, l7)) {
      assertEquals(0, r.get("errors").asLong(), "failed requests: " + r + "\n" + logs());
      assertEquals(r.get("scheduled").asLong(), r.get("completed").asLong(), r.toString());
      // Stopped by the test, so it ran through both upgrades and the tail: at least that many
      // intended send times, at the fixed rate.
      assertTrue(
          r.get("scheduled").asLong() >= upgrades.plus(TAIL).toSeconds() * RATE,
          "the load covered the upgrades (" + upgrades.toSeconds() + " s): " + r);
    }

    // Every answered request went through a proxy: one access-log line per L4 connection to the
    // L4 Service, one per L7 request (the kept-alive generator primes each connection once).
    long l4Lines = l4.get("completed").asLong();
    long l7Lines = l7.get("completed").asLong() + l7.get("connections").asLong();
    List<JsonNode> lines = awaitLines(accessLog, l4Lines, l7Lines, Duration.ofSeconds(20));
    assertEquals(l4Lines, countL4(lines), "L4 connections the proxies carried");
    assertEquals(l7Lines, countL7(lines), "L7 requests the proxies carried");
    // Where a case's time goes (the test's length follows the upgrades, not a fixed load).
    System.out.printf(
        "UpgradeRootTest %s: up %d s, 2 upgrades %d s, load %.0f s (%d + %d requests)%n",
        interception.isEmpty() ? "iptables" : "ebpf",
        upTook.toSeconds(),
        upgrades.toSeconds(),
        l4.get("duration_s").asDouble(),
        l4.get("scheduled").asLong(),
        l7.get("scheduled").asLong());
    return before;
  }

  /** examples/basic plus a second Service over the same pods, routed at L7 by an HTTPRoute. */
  private Path config() throws IOException {
    Path dir = work.resolve("config");
    Files.createDirectories(dir);
    for (String f : List.of("pods.yaml", "services.yaml")) {
      Files.copy(BASIC.resolve(f), dir.resolve(f));
    }
    Files.writeString(
        dir.resolve("echo-l7.yaml"),
        """
        apiVersion: v1
        kind: Service
        metadata: {name: echo-l7, namespace: default}
        spec:
          clusterIP: 10.96.0.20
          clusterIPs: [10.96.0.20]
          selector: {app: echo}
          ports:
            - {name: http, port: 80, targetPort: 8080, protocol: TCP, appProtocol: http}
        ---
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: echo-l7, namespace: default}
        spec:
          parentRefs:
            - {group: "", kind: Service, name: echo-l7, port: 80}
          rules:
            - matches:
                - path: {type: PathPrefix, value: /}
              backendRefs:
                - {name: echo-l7, port: 80}
        """,
        StandardCharsets.UTF_8);
    return dir;
  }

  private StateFile.State up(Path config, List<String> proxyArgs) throws Exception {
    try {
      new LocalUp(RootFixture.upOptions(config, runDir, prefix, WAIT, proxyArgs), out).run();
    } catch (Exception e) {
      throw new AssertionError("local up failed; output:\n" + log + "\n" + logs(), e);
    }
    return StateFile.load(runDir).state();
  }

  /**
   * {@code nodemesh loadgen} in the client pod (and, in eBPF mode, in the cgroup the programs are
   * attached to), fixed rate, no warm-up, so every request it sends is counted.
   */
  private Process loadgen(
      String netns,
      @Nullable TestCgroup cgroup,
      Path json,
      boolean newConnection,
      String url,
      Path stop)
      throws IOException {
    List<String> argv = new ArrayList<>();
    if (cgroup != null) {
      argv.addAll(List.of("sh", "-c", cgroup.joinCommand() + "\"$@\"", "sh"));
    }
    argv.addAll(
        List.of(
            "ip",
            "netns",
            "exec",
            netns,
            Path.of(System.getProperty("java.home"), "bin", "java").toString(),
            "-XX:+UseSerialGC",
            "-Xmx128m",
            "-cp",
            System.getProperty("java.class.path"),
            "dev.nodemesh.scripts.cli.Main",
            "loadgen",
            "-R",
            Integer.toString(RATE),
            "-d",
            LOAD.toSeconds() + "s",
            "--warmup",
            "0s",
            "--drain",
            "10s",
            "-c",
            "4",
            "--json",
            json.toString(),
            "--stop-file",
            stop.toString()));
    if (newConnection) {
      argv.add("--new-connection");
    }
    argv.add(url);
    Path output = json.resolveSibling(json.getFileName() + ".out");
    return new ProcessBuilder(argv)
        .redirectErrorStream(true)
        .redirectOutput(output.toFile())
        .start();
  }

  private String output(Process p) throws IOException {
    return "pid " + p.pid() + "\n" + output();
  }

  /** The load generators' output so far. */
  private String output() throws IOException {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> s = Files.list(work)) {
      for (Path f : s.filter(f -> f.toString().endsWith(".out")).toList()) {
        sb.append("== ").append(f).append('\n').append(Netns.tail(f, 20)).append('\n');
      }
    }
    return sb.toString();
  }

  /**
   * The access log once it holds at least the lines expected (the last ones come at connection
   * end), or as it is at {@code limit}.
   */
  private static List<JsonNode> awaitLines(Path file, long l4, long l7, Duration limit)
      throws Exception {
    long deadline = System.nanoTime() + limit.toNanos();
    List<JsonNode> lines = List.of();
    while (System.nanoTime() - deadline < 0) {
      lines = read(file);
      if (countL4(lines) >= l4 && countL7(lines) >= l7) {
        Thread.sleep(500); // anything beyond the expected count would fail the equality after
        return read(file);
      }
      Thread.sleep(200);
    }
    return lines;
  }

  private static List<JsonNode> read(Path file) throws IOException {
    if (!Files.exists(file)) {
      return List.of();
    }
    List<JsonNode> lines = new ArrayList<>();
    for (String l : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      if (!l.isBlank()) {
        lines.add(JSON.readTree(l));
      }
    }
    return lines;
  }

  private static long countL4(List<JsonNode> lines) {
    return lines.stream()
        .filter(l -> !l.hasNonNull("http_method"))
        .filter(l -> "client".equals(l.path("source_workload").asText()))
        .filter(l -> "10.96.0.10:80".equals(l.path("original_destination").asText()))
        .count();
  }

  private static long countL7(List<JsonNode> lines) {
    return lines.stream()
        .filter(l -> l.hasNonNull("http_method"))
        .filter(l -> "client".equals(l.path("source_workload").asText()))
        .filter(l -> l.path("destination_service").asText().startsWith("echo-l7"))
        .count();
  }

  private String logs() throws IOException {
    return RootFixture.logs(runDir, 40);
  }

  /**
   * {@link RootFixture#cgroupTree} without the program IDs (an upgrade swaps new programs into the
   * same links, which is the point), sorted.
   */
  private static List<String> attachments(Path cgroup) throws IOException {
    return cgroupTree(cgroup).stream()
        .map(
            l ->
                String.join(
                    " ",
                    Stream.of(l.trim().split("\\s+")).filter(w -> !w.matches("\\d+")).toList()))
        .sorted()
        .toList();
  }
}
