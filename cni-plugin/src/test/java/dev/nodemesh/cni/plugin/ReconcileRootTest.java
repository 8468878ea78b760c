package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.PodSockets;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Writer;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Node-agent reconciliation from the plugin's records, end to end: pods are added through the
 * plugin's own ADD code path (so their records are exactly what the plugin writes), the node proxy
 * runs in this JVM, pods are namespaces on a bridge inside a test "node" namespace (nothing in the
 * root namespace).
 */
@RootTest
class ReconcileRootTest {
  private static final String VIP = "10.97.0.20";
  private static final int PODS = 20;

  /** The interception modes the restart tests run in. */
  enum Kind {
    IPTABLES,
    EBPF
  }

  @TempDir Path tmp;
  private final ByteArrayOutputStream pluginLog = new ByteArrayOutputStream();
  private TestNode node;
  private Plugin plugin;
  private Kind mode = Kind.IPTABLES;
  private @Nullable TestCgroup cgroup;
  private @Nullable TestBpffs bpffs;
  private @Nullable Path pins;

  @BeforeEach
  void setUp() throws IOException {
    node = TestNode.create(tmp);
    plugin = Plugin.standardWith(new PrintStream(pluginLog, true, StandardCharsets.UTF_8));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      node.close();
      if (pins != null && Files.exists(pins)) {
        // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
        InterceptionPrograms.install(cgroup.path(), pins).uninstall();
      }
    } finally {
      try {
        if (bpffs != null) {
          bpffs.close();
        }
      } finally {
        if (cgroup != null) {
          cgroup.close();
        }
      }
    }
  }

  /** Uses interception {@code kind} for every proxy this test starts. */
  private void use(Kind kind) throws IOException {
    mode = kind;
    if (kind == Kind.EBPF) {
      cgroup = TestCgroup.create("reconcile");
      bpffs = TestBpffs.mount();
      pins = bpffs.path().resolve("nodemesh");
    }
  }

  /**
   * The start-up re-enrolment, the pods captured a few at a time: every recorded pod is enrolled
   * again (iptables: its rules rewritten in place; eBPF: its netns cookie registered and its
   * inbound link adopted) before the first 200 from /ready, a deleted pod's record goes.
   */
  @ParameterizedTest
  @EnumSource(Kind.class)
  void restartedProxyReenrolsRecordedPodsBeforeReadyAndDropsDeletedOnes(Kind kind)
      throws Exception {
    use(kind);
    List<String> names = new ArrayList<>();
    for (int i = 1; i <= PODS; i++) {
      names.add("pod-" + i);
      node.addPod("pod-" + i, 10 + i);
    }
    node.addPod("gone", 9);
    for (int i = 2; i <= 4; i++) {
      node.serve("pod-" + i, 9000, TestServer.Mode.LINES);
    }
    writeConfig(node.podNames());
    startProxy();
    for (String p : node.podNames()) {
      cniAdd(p);
    }
    awaitReady();
    assertEquals("pod-", exchange("pod-1", VIP, "hi").substring(0, 4));
    assertEquals(PODS + 1, records().size());

    node.stopProxy();
    // While the proxy is down, "gone" is deleted: its DEL could not reach the agent in time and its
    // record is left behind (as when the runtime gives up on a DEL), and the control plane drops
    // it.
    node.removePod("gone");
    writeConfig(node.podNames());

    startProxy();
    // The first 200 from /ready must already see all 20 pods enrolled.
    awaitReady();
    Set<String> enrolled =
        node.proxy().dataPlane().pods().all().stream()
            .map(EnrolledPod::name)
            .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(new TreeSet<>(names), enrolled);
    assertEquals(new TreeSet<>(names), records());
    assertFalse(Files.exists(tmp.resolve("run/ctr-gone.json")));
    for (String p : names) {
      assertTrue(captured(p), p + " is not captured after the restart");
    }

    // Traffic flows through the new proxy: the service VIP reaches an echo pod.
    String reply = exchange("pod-1", VIP, "again");
    assertTrue(reply.matches("pod-[234]:again"), reply);
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains("destination_service=\"echo.default\"")
            && metrics.contains("source_workload=\"pod-1\""),
        metrics);
    // And the plugin's CHECK agrees with the restarted agent.
    Plugin.Response check = cni("CHECK", "pod-7");
    assertEquals(0, check.exitCode(), check.stdout() + pluginLog);
  }

  /**
   * Istio's reconcileIptablesOnStartup: a node rebooted or a proxy restarted finds pods whose rules
   * were changed while it was down (a chain emptied and given a stray rule, a jump deleted); the
   * start re-enrols them from the records, which rewrites their rules exactly as an enrolment makes
   * them, before /ready. In eBPF mode the rules in the pod are the caller-address routing's mangle
   * chains; iptables mode has those and the nat redirect chains.
   */
  @ParameterizedTest
  @EnumSource(Kind.class)
  void rulesChangedWhileTheProxyWasDownAreMadeExactAgainAtStart(Kind kind) throws Exception {
    use(kind);
    node.addPod("a", 40);
    node.addPod("b", 41);
    writeConfig(node.podNames());
    startProxy();
    cniAdd("a");
    cniAdd("b");
    awaitReady();
    Map<String, String> exact = new HashMap<>();
    for (String p : List.of("a", "b")) {
      exact.put(p, rules(p));
      if (kind == Kind.IPTABLES) {
        assertTrue(exact.get(p).contains("-j REDIRECT --to-ports 15001"), exact.get(p));
      }
      assertTrue(exact.get(p).contains("-j NODEMESH_REPLY"), exact.get(p));
    }

    node.stopProxy();
    TestNetns a = node.pod("a");
    a.exec("iptables", "-t", "mangle", "-F", "NODEMESH_PRERT");
    a.exec("iptables", "-t", "mangle", "-A", "NODEMESH_PRERT", "-p", "tcp", "-j", "RETURN");
    TestNetns b = node.pod("b");
    b.exec("iptables", "-t", "mangle", "-D", "OUTPUT", "-j", "NODEMESH_REPLY");
    if (kind == Kind.IPTABLES) {
      a.exec("iptables", "-t", "nat", "-F", "NODEMESH_OUTPUT");
      a.exec("iptables", "-t", "nat", "-A", "NODEMESH_OUTPUT", "-p", "tcp", "-j", "RETURN");
      b.exec("iptables", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-j", "NODEMESH_OUTPUT");
      b.exec("iptables", "-t", "nat", "-D", "PREROUTING", "-p", "tcp", "-j", "NODEMESH_INBOUND");
    }
    assertFalse(rules("a").equals(exact.get("a")));
    assertFalse(rules("b").equals(exact.get("b")));

    startProxy();
    awaitReady();
    for (String p : List.of("a", "b")) {
      assertEquals(exact.get(p), rules(p), "rules of " + p + " after the restart");
    }
  }

  /** A pod's nat and mangle tables as iptables-save prints them, without comments and counters. */
  private String rules(String pod) throws IOException {
    return node.pod(pod)
        .exec("iptables-save")
        .lines()
        .filter(l -> !l.startsWith("#"))
        .map(l -> l.replaceAll("\\[\\d+:\\d+\\]", ""))
        .collect(Collectors.joining("\n"));
  }

  /** Whether {@code pod}'s outbound traffic is captured: its nat jump, or its netns cookie. */
  private boolean captured(String pod) throws IOException {
    if (mode == Kind.IPTABLES) {
      return node.natTable(pod).contains("-A OUTPUT -p tcp -j NODEMESH_OUTPUT");
    }
    EbpfInterception ebpf = (EbpfInterception) node.proxy().dataPlane().interception();
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod(pod).path())) {
      return ebpf.programs().registration(ns.cookie()).isPresent()
          && ebpf.programs().inboundAttached(ns.cookie());
    }
  }

  @Test
  void enrollingARunningPodKeepsItsOpenConnections() throws Exception {
    node.addPod("a", 30);
    node.addPod("b", 31);
    node.serve("b", 9000, TestServer.Mode.LINES);
    writeConfig(node.podNames());
    try (SocketChannel ch = node.connect("a", node.ip("b"), 9000)) {
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(ch.socket().getInputStream(), StandardCharsets.UTF_8));
      Writer out = new java.io.OutputStreamWriter(ch.socket().getOutputStream(), UTF8);
      assertEquals("b:before", line(in, out, "before"));

      startProxy();
      cniAdd("a");
      cniAdd("b");
      assertTrue(node.natTable("a").contains("15001"));
      assertTrue(node.natTable("b").contains("15006"));

      // The connection opened before enrolment carries on untouched.
      assertEquals("b:after", line(in, out, "after"));
    }
    // A new one is captured by the proxy.
    assertEquals("b:new", exchange("a", node.ip("b"), "new"));
    assertTrue(
        node.proxy().dataPlane().metrics().scrape().contains("destination_workload=\"b\""),
        "the new connection did not go through the proxy");
  }

  private static final java.nio.charset.Charset UTF8 = StandardCharsets.UTF_8;

  private void writeConfig(Set<String> names) throws IOException {
    StringBuilder y = new StringBuilder();
    for (String n : names) {
      String app = n.equals("b") || n.matches("pod-[234]") ? "echo" : "idle";
      y.append(
          """
          apiVersion: v1
          kind: Pod
          metadata: {name: %s, namespace: default, uid: uid-%s, labels: {app: %s}}
          spec:
            nodeName: test-node
            containers: [{name: app, image: app, ports: [{name: tcp, containerPort: 9000}]}]
          status: {podIP: %s}
          ---
          """
              .formatted(n, n, app, node.ip(n)));
    }
    y.append(
        """
        apiVersion: v1
        kind: Service
        metadata: {name: echo, namespace: default}
        spec:
          clusterIP: %s
          selector: {app: echo}
          ports: [{name: tcp, port: 9000, targetPort: 9000}]
        """
            .formatted(VIP));
    node.writeConfig("mesh.yaml", y.toString());
  }

  private void startProxy() throws Exception {
    node.startProxy(
        NodeProxyConfig.builder()
            .transport(TransportKind.EPOLL)
            .configDir(node.configDir())
            .agentSocket(node.agentSocket())
            .adminAddress(new InetSocketAddress("127.0.0.1", 0))
            .nodeName("test-node")
            .workerThreads(2)
            .interception(
                mode == Kind.EBPF
                    ? InterceptionMode.ebpf(cgroup.path(), pins)
                    : InterceptionMode.iptables())
            .cniRunDir(tmp.resolve("run"))
            .build());
  }

  private Plugin.Response cni(String command, String pod) {
    Map<String, String> env = new HashMap<>();
    env.put("CNI_COMMAND", command);
    env.put("CNI_CONTAINERID", "ctr-" + pod);
    env.put("CNI_NETNS", node.pod(pod).path().toString());
    env.put("CNI_IFNAME", "eth0");
    env.put("CNI_PATH", "/opt/cni/bin");
    env.put(
        "CNI_ARGS",
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME="
            + pod
            + ";K8S_POD_UID=uid-"
            + pod);
    String conf =
        """
        {"cniVersion": "1.0.0", "name": "nmtest", "type": "nodemesh",
         "agentSocket": "%s", "runDir": "%s",
         "prevResult": {"cniVersion": "1.0.0",
           "interfaces": [{"name": "eth0", "sandbox": "%s"}],
           "ips": [{"address": "%s/24", "interface": 0}]}}
        """
            .formatted(node.agentSocket(), tmp.resolve("run"), node.pod(pod).path(), node.ip(pod));
    return plugin.run(env, conf.getBytes(StandardCharsets.UTF_8));
  }

  private void cniAdd(String pod) {
    Plugin.Response r = cni("ADD", pod);
    assertEquals(0, r.exitCode(), pod + ": " + r.stdout() + pluginLog);
  }

  /** The pod names in the plugin's records. */
  private Set<String> records() throws IOException {
    return new dev.nodemesh.model.cni.PodRecords(tmp.resolve("run"))
        .list().stream()
            .map(dev.nodemesh.model.cni.PodRecords.Record::name)
            .collect(Collectors.toCollection(TreeSet::new));
  }

  /** Polls /ready until 200 (bounded); every answer before that must be 503. */
  private void awaitReady() throws Exception {
    InetSocketAddress admin = node.proxy().adminAddress();
    URI ready = URI.create("http://127.0.0.1:" + admin.getPort() + "/ready");
    for (int i = 0; i < 600; i++) {
      HttpURLConnection c = (HttpURLConnection) ready.toURL().openConnection();
      int code = c.getResponseCode();
      c.disconnect();
      if (code == 200) {
        return;
      }
      assertEquals(503, code);
      Thread.sleep(100);
    }
    throw new AssertionError("/ready never became 200");
  }

  private static String line(BufferedReader in, Writer out, String msg) throws IOException {
    out.write(msg + "\n");
    out.flush();
    return in.readLine();
  }

  /**
   * One line over a fresh connection from {@code pod}'s app (in eBPF mode a helper process in the
   * attached cgroup: a hook never sees this JVM's sockets).
   */
  private String exchange(String pod, String ip, String msg) throws IOException {
    try (PodSockets.Conn c = node.podConnect(pod, ip, 9000)) {
      c.setReadTimeout(Duration.ofSeconds(30));
      c.write(ByteBuffer.wrap((msg + "\n").getBytes(StandardCharsets.UTF_8)));
      ByteBuffer buf = ByteBuffer.allocate(4096);
      StringBuilder got = new StringBuilder();
      while (got.indexOf("\n") < 0) {
        buf.clear();
        int n = c.read(buf);
        if (n < 0) {
          break;
        }
        got.append(new String(buf.array(), 0, n, StandardCharsets.UTF_8));
      }
      int nl = got.indexOf("\n");
      return nl < 0 ? got.toString() : got.substring(0, nl);
    }
  }
}
