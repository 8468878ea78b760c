package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A namespace outside the mesh (kube-system, as install-cni excludes it) with a pod on each of two
 * nodes, beside meshed pods: the CNI plugin never enrols the excluded pods, so the config marks
 * them uncaptured. Both proxies become ready without them, meshed pods reach them directly (no
 * HBONE to a node that serves nothing for them), and they reach meshed pods, both ways.
 *
 * <p>Both interception modes, one cluster each. The scope is the same in both: what the agent
 * enrols is captured (iptables: the pod's nat chains; eBPF: its netns cookie in the programs' map
 * and the sk_lookup link on its namespace), on every TCP port but HBONE's, and nothing else is
 * touched. In eBPF mode the excluded pods' processes run inside the cgroup the programs are
 * attached to, as kube-system pods do under kubepods: the clients here are pod processes ({@link
 * TestNode#podConnect}), so an excluded pod reaching a meshed one proves the programs leave an
 * unregistered namespace alone.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class CaptureScopeRootTest {
  /** Service "client", whose one endpoint is the client pod (NAME on 9000). */
  private static final String CLIENT_VIP = "10.97.0.50";

  /** Also handed to the static set-up, which makes one cluster per mode. */
  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static TwoNodeCluster cluster;
  private static Interception.Setup modes;

  /** One cluster per interception mode, shared by the tests of that mode. */
  @BeforeParameterizedClassInvocation
  static void setUp(Interception mode) throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp.resolve(mode.name()));
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("dns-1", 20);
    n2.addPod("server", 11);
    n2.addPod("dns-2", 21);
    n1.serve("client", 9000, TestServer.Mode.NAME);
    n1.serve("dns-1", 9000, TestServer.Mode.NAME);
    n2.serve("server", 9000, TestServer.Mode.NAME);
    n2.serve("dns-2", 9000, TestServer.Mode.NAME);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("server", n2.ip("server"), "server", "node-2", "server")
            + inKubeSystem(Mesh.pod("dns-1", n1.ip("dns-1"), "dns", "node-1", "coredns"))
            + inKubeSystem(Mesh.pod("dns-2", n2.ip("dns-2"), "dns", "node-2", "coredns")));
    cluster.writeConfig("services.yaml", Mesh.service("client", CLIENT_VIP, "client"));
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    cluster.startProxies(
        modes,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF);
    // What the CNI plugin does with the default scope: enrols the meshed pods only.
    assertFalse(n1.enrol("client").getAlreadyEnrolled());
    assertFalse(n2.enrol("server").getAlreadyEnrolled());
  }

  private static String inKubeSystem(String podYaml) {
    return podYaml.replace("namespace: default", "namespace: kube-system");
  }

  @AfterParameterizedClassInvocation
  static void tearDown() throws Exception {
    try {
      Teardown.close(cluster, modes);
    } finally {
      cluster = null;
      modes = null;
    }
  }

  @Test
  void onlyTheMeshedPodsAreCapturedInBothDirections() throws Exception {
    for (TestNode n : List.of(cluster.node1, cluster.node2)) {
      for (String pod : n.podNames()) {
        boolean meshed = !pod.startsWith("dns-");
        assertEquals(meshed, outboundCaptured(n, pod), n.nodeName() + "/" + pod + " outbound");
        assertEquals(meshed, inboundCaptured(n, pod), n.nodeName() + "/" + pod + " inbound");
      }
    }
  }

  @Test
  void bothProxiesAreReadyWithoutTheExcludedPods() throws Exception {
    for (TestNode n : List.of(cluster.node1, cluster.node2)) {
      Await.waitFor(
          () -> n.proxy().readiness().ready(),
          () -> n.nodeName() + ": " + n.proxy().readiness().notReadyReason());
    }
  }

  @Test
  void meshedPodsReachExcludedPodsDirectlyOnBothNodes() throws Exception {
    double tunnels = streamsOpened(cluster.node1);
    // Another node's excluded pod: before, this went into an HBONE tunnel to dns-2:15008, which
    // nothing serves (no proxy listens in an unenrolled pod's namespace).
    assertEquals("dns-2", name(cluster.node1, "client", cluster.node2.ip("dns-2")));
    // The same node's excluded pod.
    assertEquals("dns-1", name(cluster.node1, "client", cluster.node1.ip("dns-1")));
    assertEquals(tunnels, streamsOpened(cluster.node1), "no tunnel for pods outside the mesh");
  }

  /**
   * A pod's connection to its own address never leaves it: iptables mode leaves it alone (it is
   * routed over lo), eBPF mode's connect4 captures it (it skips only 127/8) and the proxy delivers
   * it inside the pod; through its own Service it is captured in both modes (hairpin). Either way
   * the pod reaches itself and sees its own address as the caller. Delivering from the caller's
   * address bound the pod's own address here, and that connect timed out (10 s, then a reset).
   */
  @Test
  void aMeshedPodReachesItselfByItsAddressAndThroughItsService() throws Exception {
    String self = cluster.node1.ip("client");
    assertEquals("client " + self, line(cluster.node1, "client", self));
    assertEquals("client " + self, line(cluster.node1, "client", CLIENT_VIP));
  }

  @Test
  void excludedPodsReachMeshedPodsAcrossNodes() throws Exception {
    assertEquals("server", name(cluster.node1, "dns-1", cluster.node2.ip("server")));
    assertEquals("client", name(cluster.node2, "dns-2", cluster.node1.ip("client")));
  }

  /** The first word the NAME server at {@code ip}:9000 answers to a connection from {@code pod}. */
  private static String name(TestNode node, String pod, String ip) throws IOException {
    return line(node, pod, ip).split(" ")[0];
  }

  /** What the NAME server at {@code ip}:9000 answers {@code pod}: its name and the peer it saw. */
  private static String line(TestNode node, String pod, String ip) throws IOException {
    try (Conn ch = node.podConnect(pod, ip, 9000)) {
      ByteArrayOutputStream out = new ByteArrayOutputStream();
      ByteBuffer buf = ByteBuffer.allocate(4096);
      while (ch.read(buf) >= 0) {
        buf.flip();
        out.write(buf.array(), 0, buf.limit());
        buf.clear();
      }
      return out.toString(StandardCharsets.UTF_8).trim();
    }
  }

  /** The pod's outbound capture: its NODEMESH_OUTPUT chain, or its registered netns cookie. */
  private boolean outboundCaptured(TestNode node, String pod) throws IOException {
    if (mode == Interception.IPTABLES) {
      return node.natTable(pod).contains(":NODEMESH_OUTPUT");
    }
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod(pod).path())) {
      return programs(node).registration(ns.cookie()).isPresent();
    }
  }

  /**
   * The pod's inbound capture: its NODEMESH_INBOUND chain, or the sk_lookup link on its namespace
   * with its address handed to the proxy's listener.
   */
  private boolean inboundCaptured(TestNode node, String pod) throws IOException {
    if (mode == Interception.IPTABLES) {
      return node.natTable(pod).contains(":NODEMESH_INBOUND");
    }
    InterceptionPrograms programs = programs(node);
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod(pod).path())) {
      boolean attached = programs.inboundAttached(ns.cookie());
      boolean registered =
          programs.inboundRegistration(InetAddress.getByName(node.ip(pod))).isPresent();
      assertEquals(attached, registered, pod + ": link attached and address registered agree");
      return attached;
    }
  }

  private static InterceptionPrograms programs(TestNode node) {
    return ((EbpfInterception) node.proxy().dataPlane().interception()).programs();
  }

  private static double streamsOpened(TestNode node) {
    double sum = 0;
    for (String l : node.proxy().dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith("nodemesh_tunnel_streams_opened_total{")) {
        sum += Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }
}
