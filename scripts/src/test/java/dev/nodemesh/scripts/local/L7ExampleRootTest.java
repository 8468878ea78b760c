package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.scripts.demo.L7Tour;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * {@code examples/l7} end to end, as {@code scripts/demo} runs it: {@code local up} of the example
 * (two nodes through the CNI chain, the control plane on the example's directory), then the demo's
 * own {@link L7Tour}, whose printed figures must be what the example's resources ask for: the
 * canary split within a binomial margin of 90/10, the fault's 503s within a binomial margin of 25
 * %, exactly 10 requests through the rate limit, every denied request denied and counted by the
 * proxies, and nothing else failing. Both interception modes: in eBPF mode each node's proxy gets a
 * cgroup and a pin dir of its own ({@link LocalUp#NODE} in the flags), the apps and the tour's curl
 * run in their node's cgroup, and down leaves no pin and no attachment.
 */
@RootTest
@ParameterizedClass(name = "ebpf={0}")
@ValueSource(booleans = {false, true})
class L7ExampleRootTest {
  private static final Path L7 = Path.of("../examples/l7").toAbsolutePath().normalize();
  private static final List<String> NODES = List.of("node-1", "node-2");

  /** eBPF interception when true, iptables when false. */
  @Parameter boolean ebpf;

  @TempDir Path runDir;
  private String prefix;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
  private final List<TestCgroup> cgroups = new ArrayList<>();
  private @Nullable TestBpffs bpffs;
  private List<String> kernelPins = List.of();

  @BeforeEach
  void prefix() {
    prefix = Names.randomPrefix();
  }

  @AfterEach
  void cleanUp() throws Exception {
    try {
      List<String> left = RootFixture.tearDown(runDir, prefix);
      assertEquals(List.of(), left, "left behind after down; output:\n" + log);
      if (bpffs != null) {
        assertEquals(kernelPins, RootFixture.pins(bpffs.path()), "bpffs after down:\n" + log);
      }
      for (TestCgroup cg : cgroups) {
        assertEquals(List.of(), RootFixture.cgroupTree(cg.path()), "attached after down");
      }
    } finally {
      // After down (it stopped the apps in the cgroups); the unmount drops any pin left.
      Exception first = null;
      for (AutoCloseable c : cgroups) {
        try {
          c.close();
        } catch (Exception e) {
          first = first == null ? e : first;
        }
      }
      if (bpffs != null) {
        bpffs.close();
      }
      if (first != null) {
        throw first;
      }
    }
  }

  /** The proxies' flags: iptables, or eBPF on a cgroup and pin dir per node made here. */
  private List<String> proxyArgs() throws Exception {
    // The access log names each request's backend, endpoint and flag: a failure shows which
    // request went where and why it was not answered by an app.
    List<String> args = new ArrayList<>(List.of("--workers=1", "--access-log=stdout"));
    if (ebpf) {
      bpffs = TestBpffs.mount();
      kernelPins = RootFixture.pins(bpffs.path());
      for (String node : NODES) {
        cgroups.add(TestCgroup.create("l7-" + node));
      }
      // TestCgroup names them <run prefix>-l7-<node>: one flag for both, with {node}.
      String cgroup = cgroups.get(0).path().toString().replace(NODES.get(0), LocalUp.NODE);
      args.addAll(
          List.of(
              "--intercept=ebpf",
              "--bpf-cgroup=" + cgroup,
              "--bpf-pin-dir=" + bpffs.path().resolve(LocalUp.NODE)));
    }
    return args;
  }

  /**
   * {@code n·p ± 4.5·sqrt(n·p·(1-p))}: a correct random split falls outside about once in 150,000
   * runs; a split that ignores the weights (even, or all to one side) falls outside every time.
   */
  private static void assertBinomial(int n, double p, int observed, String what) {
    double mean = n * p;
    double margin = 4.5 * Math.sqrt(n * p * (1 - p));
    assertTrue(
        observed >= mean - margin && observed <= mean + margin,
        what + ": " + observed + " of " + n + ", expected " + mean + " ± " + margin);
  }

  @Test
  void theDemosL7FiguresAreWhatTheExampleAsksFor() throws Exception {
    List<String> proxyArgs = proxyArgs();
    try {
      new LocalUp(
              new LocalUp.Options(
                  L7,
                  runDir,
                  true,
                  prefix,
                  "10.96.0.0/16",
                  "local",
                  "127.0.0.1:0", // free ports: other tests may hold 15020
                  Duration.ofSeconds(120),
                  List.of(),
                  proxyArgs),
              out)
          .run();
    } catch (Exception e) {
      throw new AssertionError("local up failed; output:\n" + log + "\n" + logs(), e);
    }
    L7Tour.Figures f = L7Tour.run(runDir, out);
    try {
      check(f);
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + "\n" + unusualRequests(), e);
    }
  }

  private void check(L7Tour.Figures f) {
    String printed = log.toString(StandardCharsets.UTF_8);

    // Canary: every request answered 200 by a web pod, 90/10 by version.
    assertEquals(L7Tour.SPLIT, f.split().total(), printed);
    assertEquals(L7Tour.SPLIT, f.split().status(200), printed);
    Map<String, Integer> versions = f.split().servedByVersion();
    assertEquals(L7Tour.SPLIT, versions.getOrDefault("v1", 0) + versions.getOrDefault("v2", 0));
    assertBinomial(L7Tour.SPLIT, 0.10, versions.getOrDefault("v2", 0), "canary v2");
    assertTrue(
        printed.matches("(?s).*\\n  v2 +" + versions.get("v2") + " .*web-v2-a \\(node-2\\).*"),
        printed);

    // Fault: 503 from the proxy itself (no x-served-by) for about a quarter; the rest reach v1.
    assertEquals(L7Tour.FAULT, f.fault().total(), printed);
    int aborted = f.fault().local(503);
    assertBinomial(L7Tour.FAULT, 0.25, aborted, "fault 503s");
    assertEquals(L7Tour.FAULT - aborted, f.fault().status(200), printed);
    assertTrue(
        f.fault().servedByPod().keySet().stream().allMatch(p -> p.startsWith("web-v1-")),
        f.fault().toString());
    assertTrue(printed.contains(aborted + " answered 503 by the proxy"), printed);

    // Rate limit: a bucket of 10 refilled hourly lets exactly 10 through.
    assertEquals(10, f.limited().status(200), printed);
    assertEquals(L7Tour.LIMITED - 10, f.limited().local(429), printed);
    assertTrue(printed.contains("10 served, " + (L7Tour.LIMITED - 10) + " answered 429"), printed);

    // Authorization: every /admin request and every POST denied with 403, by the destination's
    // node, and the proxies counted exactly those denials between them.
    assertEquals(L7Tour.ADMIN, f.admin().local(403), f.admin().toString());
    assertEquals(L7Tour.ADMIN, f.admin().total());
    assertEquals(L7Tour.WRITES, f.writes().local(403), f.writes().toString());
    assertEquals(L7Tour.WRITES, f.writes().total());
    double counted = f.denialsByNode().values().stream().mapToDouble(Double::doubleValue).sum();
    assertEquals(L7Tour.ADMIN + L7Tour.WRITES, counted, 0.0, "" + f.denialsByNode());
    assertEquals(List.of("node-1", "node-2"), List.copyOf(f.denialsByNode().keySet()));
    assertTrue(
        printed.contains(
            L7Tour.ADMIN
                + " GET /admin/users: "
                + L7Tour.ADMIN
                + " denied (403); "
                + L7Tour.WRITES
                + " POST /: "
                + L7Tour.WRITES
                + " denied (403)"),
        printed);
  }

  /**
   * The access-log lines of the canary requests not answered 200 by an app, and every line with a
   * response flag other than the tour's own (fault FI, rate limit RL, policy DENY and 403s), from
   * each node's proxy log, plus the proxies' own log lines: what a failing run needs to be
   * explained.
   */
  private String unusualRequests() {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> s = Files.list(runDir)) {
      for (Path p : s.filter(f -> f.getFileName().toString().startsWith("proxy-")).toList()) {
        sb.append("== ").append(p.getFileName()).append('\n');
        for (String line : Files.readAllLines(p)) {
          boolean access = line.startsWith("{");
          boolean plain =
              access
                  && line.contains("\"response_flags\":\"-\"")
                  && line.contains("\"http_status\":200");
          boolean expected =
              line.contains("\"response_flags\":\"FI\"")
                  || line.contains("\"response_flags\":\"RL\"")
                  || line.contains("\"response_flags\":\"DENY\"")
                  || line.contains("\"http_status\":403");
          if (!access || (!plain && !expected)) {
            sb.append(line).append('\n');
          }
        }
      }
    } catch (IOException e) {
      sb.append("(logs unreadable: ").append(e).append(")\n");
    }
    return sb.toString();
  }

  private String logs() throws IOException {
    StringBuilder sb = new StringBuilder();
    try (Stream<Path> s = Files.list(runDir)) {
      for (Path p : s.filter(f -> f.toString().endsWith(".log")).toList()) {
        sb.append("== ").append(p).append('\n').append(Netns.tail(p, 30)).append('\n');
      }
    }
    return sb.toString();
  }
}
