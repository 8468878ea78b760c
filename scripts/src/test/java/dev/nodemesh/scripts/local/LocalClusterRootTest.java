package dev.nodemesh.scripts.local;

import static dev.nodemesh.scripts.local.RootFixture.sh;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.cni.agent.AgentClient;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.NodeRecord;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.ByteArrayOutputStream;
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
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code local up} with the node proxies, pods attached through the CNI chain (bridge + host-local
 * + nodemesh, run inside each node's netns), on one node and on two nodes joined by an underlay;
 * and {@code down} leaving nothing, also after a failure half-way.
 */
@RootTest
class LocalClusterRootTest {
  private static final Path BASIC = Path.of("../examples/basic").toAbsolutePath().normalize();
  private static final Path TWO_NODE = Path.of("../examples/two-node").toAbsolutePath().normalize();

  @TempDir Path runDir;
  private String prefix;
  private final ByteArrayOutputStream log = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(log, true, StandardCharsets.UTF_8);
  private final List<Long> pids = new ArrayList<>();

  @BeforeEach
  void prefix() {
    prefix = Names.randomPrefix();
  }

  @AfterEach
  void cleanUp() throws Exception {
    List<String> left = RootFixture.tearDown(runDir, prefix);
    for (long pid : pids) {
      ProcessHandle.of(pid).ifPresent(Daemons::stop);
    }
    assertEquals(List.of(), left, "left behind after down; output:\n" + log);
  }

  private LocalUp.Options options(Path config) {
    return RootFixture.upOptions(
        config, runDir, prefix, Duration.ofSeconds(120), List.of("--workers=1"));
  }

  private StateFile.State up(Path config) throws Exception {
    try {
      new LocalUp(options(config), out).run();
    } catch (Exception e) {
      throw new AssertionError("local up failed; output:\n" + log + "\n" + logs(), e);
    }
    StateFile.State state = StateFile.load(runDir).state();
    state.resources().stream()
        .filter(r -> r.kind() == Kind.process)
        .forEach(r -> pids.add(r.pid()));
    return state;
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

  private String inPod(String pod, String... argv) throws Exception {
    return in(Names.podNetns(prefix, "default", pod), argv);
  }

  private static String in(String netns, String... argv) throws Exception {
    List<String> cmd = new ArrayList<>(List.of("ip", "netns", "exec", netns));
    cmd.addAll(List.of(argv));
    Exec.Result r = Exec.run(cmd);
    assertEquals(0, r.exitCode(), String.join(" ", cmd) + ": " + r.output());
    return r.output();
  }

  private static String scrape(NodeRecord node) throws Exception {
    HttpClient http = HttpClient.newHttpClient();
    return http.send(
            HttpRequest.newBuilder(URI.create("http://" + node.admin() + "/metrics"))
                .timeout(Duration.ofSeconds(10))
                .build(),
            HttpResponse.BodyHandlers.ofString())
        .body();
  }

  /** The value of the first series of {@code metric} whose line holds every label given. */
  private static double metric(String scrape, String metric, String... labels) {
    return scrape
        .lines()
        .filter(l -> l.startsWith(metric + "{"))
        .filter(l -> Stream.of(labels).allMatch(l::contains))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  /** Names of files anywhere under {@code dir} that carry this run's prefix. */
  private List<String> filesNamedForRun(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return List.of();
    }
    try (Stream<Path> s = Files.walk(dir)) {
      return s.map(Path::toString).filter(p -> p.contains(prefix)).toList();
    }
  }

  /** Processes (proxies, control plane, apps) whose command line names this run's directory. */
  private List<String> runProcesses() {
    String dir = runDir.toString();
    return ProcessHandle.allProcesses()
        .filter(h -> h.pid() != ProcessHandle.current().pid())
        .filter(h -> h.info().commandLine().map(c -> c.contains(dir)).orElse(false))
        .map(h -> h.pid() + " " + h.info().commandLine().orElse(""))
        .toList();
  }

  private void assertAllGone(StateFile.State state) throws Exception {
    RootFixture.assertNothingLeft(prefix);
    assertEquals(List.of(), runProcesses());
    for (Resource p : state.resources()) {
      if (p.kind() == Kind.process) {
        assertFalse(ProcessHandle.of(p.pid()).map(ProcessHandle::isAlive).orElse(false), "" + p);
      }
    }
    assertFalse(Files.exists(runDir.resolve(StateFile.NAME)));
    assertFalse(Files.exists(runDir.resolve("cni")), "CNI state left in the run dir");
    try (Stream<Path> s = Files.list(runDir)) {
      assertEquals(List.of(), s.filter(p -> p.toString().endsWith(".sock")).toList());
    }
    assertEquals(List.of(), filesNamedForRun(Path.of("/var/lib/cni")));
    assertEquals(List.of(), filesNamedForRun(Path.of("/etc/cni")));
  }

  @Test
  void oneNodeThroughTheCniChainGivesPodsTheirYamlIpsAndDownLeavesNothing() throws Exception {
    StateFile.State state = up(BASIC);
    assertEquals(1, state.nodes().size());
    NodeRecord node = state.nodes().get(0);
    assertEquals("node-1", node.name());
    assertEquals(Names.nodeNetns(prefix, "node-1"), node.netns());

    // Pods have exactly their YAML IPs, from host-local, with its state under the run dir.
    for (String[] p :
        List.of(
            new String[] {"client", "10.213.0.10"},
            new String[] {"echo-1", "10.213.0.11"},
            new String[] {"echo-3", "10.213.0.13"})) {
      String addr = inPod(p[0], "ip", "-4", "-o", "addr", "show", "dev", "eth0");
      assertTrue(addr.contains(p[1] + "/24"), addr);
      assertTrue(
          Files.exists(runDir.resolve("cni/ipam/" + Names.network(prefix, "node-1") + "/" + p[1])),
          "host-local lease of " + p[1]);
    }
    String routes = inPod("client", "ip", "route");
    assertFalse(routes.contains("default"), "pods must have no default route: " + routes);
    assertTrue(routes.contains("10.96.0.0/16 via 10.213.0.1 dev eth0"), routes);
    // The bridge, with every pod's veth on it, is in the node netns; the root netns has neither
    // (RootFixture.leftovers checks root links named for the run after down; the bridge plugin
    // names host veths itself, so check here that they are all in the node).
    String ports = in(node.netns(), "ip", "-o", "link", "show", "master", node.bridge());
    assertEquals(4, ports.lines().count(), ports);
    assertTrue(in(node.netns(), "ip", "-4", "-o", "addr").contains("10.213.0.1/24"));
    assertFalse(sh("ip", "link", "show", "dev", node.bridge()).ok(), "bridge in the root netns");

    // Enrolled by the nodemesh plugin: the agent knows every pod, and the client's traffic to the
    // service goes through the proxy.
    try (AgentClient agent = new AgentClient(Path.of(node.agentSocket()), Duration.ofSeconds(10))) {
      assertEquals(
          List.of("client", "echo-1", "echo-2", "echo-3"),
          agent.listPods().getPodsList().stream().map(Pod::getName).sorted().toList());
    }
    String body = inPod("client", "curl", "-sS", "--max-time", "10", "http://echo/");
    assertTrue(body.startsWith("pod=echo-"), body);
    assertTrue(
        metric(
                scrape(node),
                "nodemesh_tcp_connections_opened_total",
                "reporter=\"source\"",
                "source_workload=\"client\"",
                "destination_service=\"echo.default\"")
            >= 1,
        "the request did not go through the proxy");
    assertTrue(LocalStatus.run(runDir, out) > 0);
    assertTrue(log.toString().contains("node-1"), log.toString());
    assertEquals(List.of(), filesNamedForRun(Path.of("/var/lib/cni")));

    assertTrue(LocalDown.run(runDir, out), log.toString());
    assertTrue(log.toString().contains("deleted CNI attachment"), log.toString());
    assertAllGone(state);
    assertTrue(LocalDown.run(runDir, out), "a second down is a no-op");
  }

  @Test
  void twoNodesRouteAcrossTheUnderlayThroughBothProxies() throws Exception {
    StateFile.State state = up(TWO_NODE);
    List<NodeRecord> nodes = state.nodes();
    assertEquals(List.of("node-1", "node-2"), nodes.stream().map(NodeRecord::name).toList());
    NodeRecord n1 = nodes.get(0);
    NodeRecord n2 = nodes.get(1);
    assertEquals("10.213.1.0/24", n2.subnet());

    // Pods route every node's pods and the services via their gateway, never a default route.
    String routes = inPod("echo-2", "ip", "route");
    assertFalse(routes.contains("default"), routes);
    assertTrue(routes.contains("10.213.0.0/23 via 10.213.1.1 dev eth0"), routes);
    assertTrue(routes.contains("10.96.0.0/16 via 10.213.1.1 dev eth0"), routes);
    // Nodes route the other node's pods over the underlay and forward; only in their own netns.
    String nodeRoutes = in(n1.netns(), "ip", "route");
    assertTrue(nodeRoutes.contains("10.213.1.0/24 via " + n2.underlayIp()), nodeRoutes);
    assertEquals("1", in(n2.netns(), "cat", "/proc/sys/net/ipv4/ip_forward").strip());

    // client (node-1) -> echo-2 (node-2) by pod name: out through node-1's proxy, in through
    // node-2's.
    String body = inPod("client", "curl", "-sS", "--max-time", "10", "http://echo-2:8080/hello");
    assertTrue(body.startsWith("pod=echo-2 ns=default path=/hello"), body);
    // And raw TCP to the service's tcp port, round robin over both nodes' replicas.
    for (int i = 0; i < 3; i++) {
      String line =
          inPod(
              "client",
              "bash",
              "-c",
              "exec 3<>/dev/tcp/10.96.0.10/9000; printf 'ping-"
                  + i
                  + "\\n' >&3; timeout 10 head -n 1 <&3");
      assertEquals("ping-" + i, line.strip());
    }
    String s1 = scrape(n1);
    String s2 = scrape(n2);
    assertTrue(
        metric(
                s1,
                "nodemesh_tcp_connections_opened_total",
                "reporter=\"source\"",
                "source_workload=\"client\"",
                "destination_workload=\"echo-2\"",
                "node=\"node-1\"")
            >= 1,
        s1);
    assertTrue(
        metric(
                s2,
                "nodemesh_tcp_connections_opened_total",
                "reporter=\"destination\"",
                "destination_workload=\"echo-2\"",
                "node=\"node-2\"")
            >= 1,
        s2);
    assertTrue(
        metric(s2, "nodemesh_tcp_connections_opened_total", "reporter=\"source\"") == 0,
        "node-2 sent nothing: " + s2);

    // A node proxy that died does not stop down: the plugin's DEL is best effort.
    Resource proxy2 =
        state.resources().stream()
            .filter(r -> r.kind() == Kind.process && r.name().equals("proxy:node-2"))
            .findFirst()
            .orElseThrow();
    ProcessHandle.of(proxy2.pid()).ifPresent(ProcessHandle::destroyForcibly);
    assertTrue(LocalDown.run(runDir, out), log.toString());
    assertAllGone(state);
  }

  @Test
  void aFailureHalfWayThroughTwoNodesRollsEverythingBack() throws Exception {
    // echo-3's address is already leased to another container in host-local's store, so up gets
    // as far as the last CNI ADD (namespaces, underlay, control plane, both proxies, three pods
    // attached and enrolled) and then fails, as a runtime's ADD fails on a taken IP.
    Path lease = runDir.resolve("cni/ipam/" + Names.network(prefix, "node-2") + "/10.213.1.12");
    Files.createDirectories(lease.getParent());
    Files.writeString(lease, "someone-else\neth0");
    Exception e = assertThrows(Exception.class, () -> new LocalUp(options(TWO_NODE), out).run());
    assertTrue(e.getMessage().contains("10.213.1.12"), e.getMessage());
    assertTrue(log.toString().contains("rolling back"), log.toString());
    assertTrue(log.toString().contains("deleted CNI attachment"), log.toString());
    RootFixture.assertNothingLeft(prefix);
    assertEquals(List.of(), runProcesses());
    assertFalse(Files.exists(runDir.resolve(StateFile.NAME)));
    assertFalse(Files.exists(runDir.resolve("cni")));
    assertEquals(List.of(), filesNamedForRun(Path.of("/var/lib/cni")));
  }
}
