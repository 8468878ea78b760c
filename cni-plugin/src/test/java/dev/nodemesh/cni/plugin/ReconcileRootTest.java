package dev.nodemesh.cni.plugin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.io.Writer;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.URI;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Node-agent reconciliation from the plugin's records, end to end: pods are added through the
 * plugin's own ADD code path (so their records are exactly what the plugin writes), the node proxy
 * runs in this JVM, pods are namespaces on a bridge inside a test "node" namespace (nothing in the
 * root namespace).
 */
@RootTest
class ReconcileRootTest {
  private static final String SUBNET = "10.216.0.";
  private static final String VIP = "10.97.0.20";
  private static final int PODS = 20;

  @TempDir Path tmp;
  private final List<AutoCloseable> cleanup = new ArrayList<>();
  private final Map<String, TestNetns> pods = new LinkedHashMap<>();
  private final Map<String, String> ips = new HashMap<>();
  private final ByteArrayOutputStream pluginLog = new ByteArrayOutputStream();
  private TestNetns node;
  private Plugin plugin;
  private NodeProxy proxy;

  @BeforeEach
  void setUp() throws IOException {
    node = closeLater(TestNetns.create("node"));
    node.exec("ip", "link", "add", "br0", "type", "bridge");
    node.exec("ip", "link", "set", "br0", "up");
    Files.createDirectories(tmp.resolve("config"));
    plugin = Plugin.standardWith(new PrintStream(pluginLog, true, StandardCharsets.UTF_8));
  }

  @AfterEach
  void tearDown() throws Exception {
    if (proxy != null) {
      proxy.close();
    }
    Exception first = null;
    for (int i = cleanup.size() - 1; i >= 0; i--) {
      try {
        cleanup.get(i).close();
      } catch (Exception e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

  @Test
  void restartedProxyReenrolsRecordedPodsBeforeReadyAndDropsDeletedOnes() throws Exception {
    List<String> names = new ArrayList<>();
    for (int i = 1; i <= PODS; i++) {
      names.add("pod-" + i);
      addPod("pod-" + i, 10 + i);
    }
    addPod("gone", 9);
    for (int i = 2; i <= 4; i++) {
      serve("pod-" + i, 9000);
    }
    writeConfig(pods.keySet());
    startProxy();
    for (String p : pods.keySet()) {
      cniAdd(p);
    }
    awaitReady();
    assertEquals("pod-", exchange("pod-1", VIP, "hi").substring(0, 4));
    assertEquals(PODS + 1, records().size());

    proxy.close();
    proxy = null;
    // While the proxy is down, "gone" is deleted: its DEL could not reach the agent in time and its
    // record is left behind (as when the runtime gives up on a DEL), and the control plane drops
    // it.
    pods.remove("gone").close();
    writeConfig(pods.keySet());

    startProxy();
    // The first 200 from /ready must already see all 20 pods enrolled.
    awaitReady();
    Set<String> enrolled =
        proxy.dataPlane().pods().all().stream()
            .map(EnrolledPod::name)
            .collect(Collectors.toCollection(TreeSet::new));
    assertEquals(new TreeSet<>(names), enrolled);
    assertEquals(new TreeSet<>(names), records());
    assertFalse(Files.exists(tmp.resolve("run/ctr-gone.json")));

    // Traffic flows through the new proxy: the service VIP reaches an echo pod.
    String reply = exchange("pod-1", VIP, "again");
    assertTrue(reply.matches("pod-[234]:again"), reply);
    String metrics = proxy.dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains("destination_service=\"echo.default\"")
            && metrics.contains("source_workload=\"pod-1\""),
        metrics);
    // And the plugin's CHECK agrees with the restarted agent.
    Plugin.Response check = cni("CHECK", "pod-7");
    assertEquals(0, check.exitCode(), check.stdout() + pluginLog);
  }

  @Test
  void enrollingARunningPodKeepsItsOpenConnections() throws Exception {
    addPod("a", 30);
    addPod("b", 31);
    serve("b", 9000);
    writeConfig(pods.keySet());
    try (SocketChannel ch = connect("a", ips.get("b"), 9000)) {
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(ch.socket().getInputStream(), StandardCharsets.UTF_8));
      Writer out = new java.io.OutputStreamWriter(ch.socket().getOutputStream(), UTF8);
      assertEquals("b:before", line(in, out, "before"));

      startProxy();
      cniAdd("a");
      cniAdd("b");
      assertTrue(pods.get("a").exec("iptables-save", "-t", "nat").contains("15001"));
      assertTrue(pods.get("b").exec("iptables-save", "-t", "nat").contains("15006"));

      // The connection opened before enrolment carries on untouched.
      assertEquals("b:after", line(in, out, "after"));
    }
    // A new one is captured by the proxy.
    assertEquals("b:new", exchange("a", ips.get("b"), "new"));
    assertTrue(
        proxy.dataPlane().metrics().scrape().contains("destination_workload=\"b\""),
        "the new connection did not go through the proxy");
  }

  private static final java.nio.charset.Charset UTF8 = StandardCharsets.UTF_8;

  private <T extends AutoCloseable> T closeLater(T c) {
    cleanup.add(c);
    return c;
  }

  /** A pod namespace with eth0 on the node's bridge; removed at the end unless already gone. */
  private void addPod(String name, int host) throws IOException {
    TestNetns pod = TestNetns.create(name);
    cleanup.add(
        () -> {
          if (Files.exists(pod.path())) {
            pod.close();
          }
        });
    pods.put(name, pod);
    String ip = SUBNET + host;
    ips.put(name, ip);
    String a = TestNetns.runPrefix() + "r" + host;
    String b = TestNetns.runPrefix() + "s" + host;
    TestNetns.sh(
        "ip",
        "link",
        "add",
        a,
        "netns",
        pod.name(),
        "type",
        "veth",
        "peer",
        "name",
        b,
        "netns",
        node.name());
    pod.exec("ip", "link", "set", a, "name", "eth0");
    pod.exec("ip", "addr", "add", ip + "/24", "dev", "eth0");
    pod.exec("ip", "link", "set", "eth0", "up");
    pod.exec("ip", "route", "add", "10.97.0.0/16", "dev", "eth0");
    node.exec("ip", "link", "set", b, "master", "br0", "up");
  }

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
              .formatted(n, n, app, ips.get(n)));
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
    Path tmpFile = tmp.resolve("mesh.yaml.tmp");
    Files.writeString(tmpFile, y.toString());
    Files.move(
        tmpFile,
        tmp.resolve("config/mesh.yaml"),
        java.nio.file.StandardCopyOption.REPLACE_EXISTING,
        java.nio.file.StandardCopyOption.ATOMIC_MOVE);
  }

  private void startProxy() throws Exception {
    proxy =
        NodeProxy.start(
            new NodeProxyConfig(
                    TransportKind.EPOLL,
                    tmp.resolve("config"),
                    tmp.resolve("agent.sock"),
                    new InetSocketAddress("127.0.0.1", 0),
                    "test-node",
                    2,
                    InterceptionMode.iptables(),
                    null)
                .withCniRunDir(tmp.resolve("run")));
  }

  private Plugin.Response cni(String command, String pod) {
    Map<String, String> env = new HashMap<>();
    env.put("CNI_COMMAND", command);
    env.put("CNI_CONTAINERID", "ctr-" + pod);
    env.put("CNI_NETNS", pods.get(pod).path().toString());
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
            .formatted(
                tmp.resolve("agent.sock"), tmp.resolve("run"), pods.get(pod).path(), ips.get(pod));
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
    InetSocketAddress admin = proxy.adminAddress();
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

  /** An echo server in {@code pod}: answers each line with {@code <pod>:<line>}. */
  private void serve(String pod, int port) throws IOException {
    ServerSocketChannel s;
    try (NetworkNamespace ns = NetworkNamespace.open(pods.get(pod).path());
        NetworkNamespace.Scope in = ns.enter()) {
      s = ServerSocketChannel.open();
    }
    s.bind(new InetSocketAddress("0.0.0.0", port));
    closeLater(s);
    Thread t =
        new Thread(
            () -> {
              while (s.isOpen()) {
                try {
                  Socket c = s.accept().socket();
                  Thread h = new Thread(() -> echoLines(pod, c), "echo-" + pod);
                  h.setDaemon(true);
                  h.start();
                } catch (IOException e) {
                  return;
                }
              }
            },
            "accept-" + pod);
    t.setDaemon(true);
    t.start();
  }

  private static void echoLines(String pod, Socket c) {
    try (c) {
      BufferedReader in =
          new BufferedReader(new InputStreamReader(c.getInputStream(), StandardCharsets.UTF_8));
      Writer out = new java.io.OutputStreamWriter(c.getOutputStream(), StandardCharsets.UTF_8);
      for (String l = in.readLine(); l != null; l = in.readLine()) {
        out.write(pod + ":" + l + "\n");
        out.flush();
      }
    } catch (IOException e) {
      // The client's assertion reports it.
    }
  }

  private SocketChannel connect(String pod, String ip, int port) throws IOException {
    SocketChannel ch;
    try (NetworkNamespace ns = NetworkNamespace.open(pods.get(pod).path());
        NetworkNamespace.Scope in = ns.enter()) {
      ch = SocketChannel.open();
    }
    try {
      ch.socket().setSoTimeout(30_000);
      ch.connect(new InetSocketAddress(ip, port));
      return ch;
    } catch (IOException e) {
      ch.close();
      throw e;
    }
  }

  private static String line(BufferedReader in, Writer out, String msg) throws IOException {
    out.write(msg + "\n");
    out.flush();
    return in.readLine();
  }

  /** One line over a fresh connection from {@code pod}. */
  private String exchange(String pod, String ip, String msg) throws IOException {
    try (SocketChannel ch = connect(pod, ip, 9000)) {
      BufferedReader in =
          new BufferedReader(
              new InputStreamReader(ch.socket().getInputStream(), StandardCharsets.UTF_8));
      return line(in, new java.io.OutputStreamWriter(ch.socket().getOutputStream(), UTF8), msg);
    }
  }
}
