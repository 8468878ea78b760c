package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static dev.nodemesh.proxy.testing.Replies.readAll;
import static dev.nodemesh.proxy.testing.Replies.readLine;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inbound capture in eBPF mode (the sk_lookup program on each enrolled pod's namespace): plaintext
 * from the "outside" pod (on the bridge, not enrolled) to an enrolled echo pod must reach the
 * proxy's 15006 listener, be checked against policy and be delivered from inside the pod, exactly
 * as in iptables mode. Inbound needs no cgroup membership, so the clients here are threads of this
 * JVM; the programs are still attached to a cgroup this test creates (outbound needs one).
 */
@RootTest
class EbpfInboundRootTest {
  @TempDir Path tmp;
  private TestNode node;
  private TestCgroup cgroup;
  private TestBpffs bpffs;
  private Path pins;

  @BeforeEach
  void setUp() throws Exception {
    cgroup = TestCgroup.create("ein");
    bpffs = TestBpffs.mount();
    pins = bpffs.path().resolve("nodemesh");
    node = TestNode.create(tmp);
    node.addStandardMesh();
    node.addPod("outside", 20);
    node.serve("outside", 8080, TestServer.Mode.NAME);
    node.startProxy(TransportKind.EPOLL, InterceptionMode.ebpf(cgroup.path(), pins));
    node.enrolStandardMesh();
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      node.close();
      // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
      InterceptionPrograms.install(cgroup.path(), pins).uninstall();
    } finally {
      try {
        bpffs.close();
      } finally {
        cgroup.close();
      }
    }
  }

  @Test
  void plaintextFromOutsideTheMeshReachesTheProxyAndIsDeliveredToTheOriginalPort()
      throws Exception {
    String[] line = readLine(node.connect("outside", node.ip("echo-1"), 8080)).split(" ");
    assertEquals("echo-1", line[0]);
    // Delivered by the proxy from inside echo-1's namespace, from the caller's own address.
    assertEquals(node.ip("outside"), line[1]);
    // Another port of the same pod goes to that port: the original destination was read right.
    assertEquals("ping", echo("outside", node.ip("echo-2"), 9000, "ping"));
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(metrics.contains("reporter=\"destination\",source_namespace=\"unknown\""), metrics);
    assertTrue(Files.exists(pins), "pins");
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("echo-1").path())) {
      assertTrue(
          Files.exists(pins.resolve("link_inbound_" + Long.toHexString(ns.cookie()))),
          "inbound link pinned for echo-1");
    }
  }

  @Test
  void aDenyPolicyResetsCapturedInboundConnections() throws Exception {
    node.writeConfig(
        "policy.yaml",
        "apiVersion: security.nodemesh.dev/v1alpha1\nkind: AuthorizationPolicy\n"
            + "metadata: {name: deny-all, namespace: default}\nspec: {}\n");
    ConfigSnapshot want = ConfigLoader.load(node.configDir());
    waitFor(
        () -> node.proxy().dataPlane().snapshots().current().sameContent(want),
        () -> node.proxy().dataPlane().snapshots().current().describe());
    assertReset(node.connect("outside", node.ip("echo-1"), 8080));
    double denied = 0;
    for (String l : node.proxy().dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith("nodemesh_policy_denials_total{")
          && l.contains("reason=\"default_deny\"")
          && l.contains("reporter=\"destination\"")) {
        denied += Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    assertEquals(1.0, denied);
  }

  @Test
  void anUnenrolledPodAndARemovedPodAreNotCaptured() throws Exception {
    // "outside" is not enrolled: a connection to it from an echo pod's namespace (a JVM thread,
    // outside the test cgroup, so not redirected on the way out) reaches its app directly.
    assertEquals(
        "outside " + node.ip("echo-1"), readLine(node.connect("echo-1", node.ip("outside"), 8080)));
    node.agent().delPod("uid-echo-1");
    // Now echo-1's app answers directly and sees the caller's own address.
    assertEquals(
        "echo-1 " + node.ip("outside"), readLine(node.connect("outside", node.ip("echo-1"), 8080)));
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("echo-1").path())) {
      assertTrue(
          Files.notExists(pins.resolve("link_inbound_" + Long.toHexString(ns.cookie()))),
          "inbound link of a deleted pod still pinned");
    }
    // The others are still captured: the proxy counts the connection (the app sees the caller's
    // address either way, so its answer alone cannot tell).
    double before = inboundTo("echo-2");
    assertEquals(
        "echo-2 " + node.ip("outside"), readLine(node.connect("outside", node.ip("echo-2"), 8080)));
    assertEquals(before + 1, inboundTo("echo-2"));
  }

  /**
   * The runtime deleted the pod's netns before its DelPod (the path is gone; the proxy's own
   * handles keep the namespace itself alive until it lets go): removing the pod must still take out
   * everything kept for it outside the namespace, found by its netns cookie and addresses, not by
   * entering it: the registration in nm_pod_netns, its address in nm_inbound_pods and
   * nm_inbound_listener, and the pinned link_inbound_&lt;cookie&gt;. The other pods' are untouched.
   */
  @Test
  void removingAPodWhoseNamespaceIsAlreadyGoneStillCleansUpItsEntriesAndPins() throws Exception {
    InterceptionPrograms programs =
        ((EbpfInterception) node.proxy().dataPlane().interception()).programs();
    long cookie;
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("echo-1").path())) {
      cookie = ns.cookie();
    }
    InetAddress ip = InetAddress.getByName(node.ip("echo-1"));
    Path pin = pins.resolve("link_inbound_" + Long.toHexString(cookie));
    assertTrue(programs.registration(cookie).isPresent(), "echo-1 registered");
    assertTrue(programs.inboundRegistration(ip).isPresent(), "echo-1's address registered");
    assertTrue(programs.inboundListenerPresent(ip), "echo-1's listener registered");
    assertTrue(Files.exists(pin), "echo-1's inbound link pinned");
    int registered = programs.entries(InterceptionPrograms.POD_NETNS);
    int addresses = programs.entries(InterceptionPrograms.INBOUND_PODS);
    int listeners = programs.entries(InterceptionPrograms.INBOUND_LISTENER);
    long links = inboundPins();

    node.pod("echo-1").close(); // ip netns delete
    assertFalse(Files.exists(node.pod("echo-1").path()));
    assertTrue(node.agent().delPod("uid-echo-1").getWasEnrolled());

    assertEquals(Optional.empty(), programs.registration(cookie), "registration left");
    assertEquals(Optional.empty(), programs.inboundRegistration(ip), "inbound address left");
    assertFalse(programs.inboundListenerPresent(ip), "inbound listener left");
    assertFalse(Files.exists(pin), "inbound link still pinned");
    assertEquals(registered - 1, programs.entries(InterceptionPrograms.POD_NETNS));
    assertEquals(addresses - 1, programs.entries(InterceptionPrograms.INBOUND_PODS));
    assertEquals(listeners - 1, programs.entries(InterceptionPrograms.INBOUND_LISTENER));
    assertEquals(links - 1, inboundPins());
    // The others are still captured: the proxy counts the connection (the app sees the caller's
    // address either way, so its answer alone cannot tell).
    double before = inboundTo("echo-2");
    assertEquals(
        "echo-2 " + node.ip("outside"), readLine(node.connect("outside", node.ip("echo-2"), 8080)));
    assertEquals(before + 1, inboundTo("echo-2"));
  }

  /** Connections the proxy delivered to {@code pod} (destination side). */
  private double inboundTo(String pod) {
    return node.proxy()
        .dataPlane()
        .metrics()
        .scrape()
        .lines()
        .filter(
            l ->
                l.startsWith("nodemesh_tcp_connections_opened_total{")
                    && l.contains("reporter=\"destination\"")
                    && l.contains("destination_workload=\"" + pod + "\""))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .sum();
  }

  private long inboundPins() throws IOException {
    try (var files = Files.list(pins)) {
      return files.filter(f -> f.getFileName().toString().startsWith("link_inbound_")).count();
    }
  }

  @Test
  void aDualStackSocketConnectingToAV4MappedServiceAddressIsProxiedToo() throws Exception {
    // connect6: an AF_INET6 socket reaching ::ffff:VIP never runs connect4; without connect6 the
    // VIP would not answer (nothing owns it on the bridge) and the client would time out.
    String script =
        "import socket\n"
            + "s=socket.socket(socket.AF_INET6); s.settimeout(5)\n"
            + "try:\n  s.connect(('::ffff:"
            + Mesh.VIP
            + "',80)); print(s.makefile().readline().strip(), flush=True)\n"
            + "except OSError as e:\n  print('error', e, flush=True)\n";
    Process p =
        new ProcessBuilder(
                "sh",
                "-c",
                cgroup.joinCommand() + "ip netns exec " + node.pod("client").name() + " \"$@\"",
                "sh",
                "/usr/bin/python3",
                "-c",
                script)
            .redirectErrorStream(true)
            .start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      assertTrue(out.startsWith("echo-"), out);
      // Delivered by the proxy from inside the echo pod, from the client pod's IPv4 address.
      String[] f = out.split(" ");
      assertEquals(node.ip("client"), f[1], out);
    } finally {
      p.destroyForcibly();
      p.waitFor(10, java.util.concurrent.TimeUnit.SECONDS);
    }
  }

  private String echo(String pod, String ip, int port, String text) throws IOException {
    try (SocketChannel ch = node.connect(pod, ip, port)) {
      ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      return readAll(ch);
    }
  }

  /** Accepted by the proxy and then reset: the client never reads data. */
  private static void assertReset(SocketChannel ch) throws IOException {
    try (ch) {
      ch.write(ByteBuffer.wrap("hello\n".getBytes(StandardCharsets.UTF_8)));
      int n = ch.read(ByteBuffer.allocate(1024));
      assertEquals(-1, n, "the connection carried data: it was not refused");
    } catch (IOException e) {
      assertTrue(
          e.getMessage() != null
              && (e.getMessage().contains("reset") || e.getMessage().contains("Broken pipe")),
          e.toString());
    }
  }
}
