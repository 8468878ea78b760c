package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.conntrack.CtNetlink;
import dev.nodemesh.bpf.conntrack.StaleConntrack;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.outbound.ServiceRange;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The service range at a cold start, in both interception modes, with the clients as pod processes
 * (so eBPF mode intercepts them too):
 *
 * <ul>
 *   <li>Before the first config (no saved one, the control plane not up yet) a pod's connection to
 *       a VIP is refused and counted ({@code no_config}), never relayed to the VIP as-is; a
 *       destination outside the range still passes; once the control plane is up, the same
 *       connection reaches an endpoint through the proxy.
 *   <li>A connection a pod made to a VIP before it was enrolled leaves an un-NATed conntrack entry;
 *       enrolment deletes it, and a connection from the same source port to the same VIP:port is
 *       then captured (in iptables mode the stale entry would have made it skip the REDIRECT).
 * </ul>
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class ColdStartRootTest {
  private static final int SOURCE_PORT = 40123;

  @Parameter Interception mode;
  @TempDir Path tmp;

  private void startProxy(TestNode node, InterceptionMode interception, int port) throws Exception {
    node.startProxy(
        FixedPortControlPlane.proxyConfig(node, interception, port, tmp.resolve("state"))
            .serviceRange(
                ServiceRange.parse(List.of(TestNode.SERVICE_CIDR + "," + TestNode.SERVICE_CIDR6)))
            .build());
  }

  private static String connect(TestNode node, String pod, String ip, int port, int sport)
      throws IOException {
    return PodClient.connect(node, pod, ip, port, sport, sport == 0 ? 10 : 1);
  }

  /** The pod's TCP entries toward {@code vip}:{@code port} that no NAT translated. */
  private static List<CtNetlink.Entry> untranslatedToward(
      TestNode node, String pod, String vip, int port) throws IOException {
    InetAddress dst = InetAddress.getByName(vip);
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod(pod).path())) {
      return StaleConntrack.list(ns).stream()
          .filter(
              e ->
                  e.original().protocol() == CtNetlink.IPPROTO_TCP
                      && e.original().dst().equals(dst)
                      && e.original().dstPort() == port
                      && e.destinationUntranslated())
          .toList();
    }
  }

  private static void waitForConfig(TestNode node) throws InterruptedException {
    // The proxy reconnects with backoff (1 s, then doubling, jittered).
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (node.proxy().dataPlane().snapshots().current().version() == 0) {
      assertTrue(System.nanoTime() < deadline, "config from the control plane");
      Thread.sleep(100);
    }
  }

  @Test
  void aVipIsRefusedBeforeTheFirstConfigAndReachedThroughTheProxyAfterIt() throws Exception {
    try (Interception.Setup setup = mode.setUp()) {
      InterceptionMode interception = setup.nextNode();
      try (TestNode node = TestNode.create(tmp.resolve("node"))) {
        node.addStandardMesh();
        node.addPod("outside", 20);
        node.serve("outside", 7000, TestServer.Mode.NAME);
        int port = FixedPortControlPlane.freePort();
        startProxy(node, interception, port);
        assertEquals(0, node.proxy().dataPlane().snapshots().current().version());
        node.enrolStandardMesh();

        String refused = connect(node, "client", Mesh.VIP, 80, 0);
        assertTrue(PodClient.refused(refused), refused);
        assertEquals(
            1.0,
            node.metric(
                "nodemesh_policy_denials_total", "reporter=\"source\"", "reason=\"no_config\""));
        // Nothing was relayed to the VIP: no untranslated entry toward it (iptables mode: the
        // proxy's own upstream socket would have been one).
        assertEquals(List.of(), untranslatedToward(node, "client", Mesh.VIP, 80));
        // Outside the service range and the mesh: passes as before.
        String outside = connect(node, "client", node.ip("outside"), 7000, 0);
        assertTrue(outside.startsWith("data:outside "), outside);

        try (ControlPlane cp = FixedPortControlPlane.start(node, port)) {
          waitForConfig(node);
          String through = connect(node, "client", Mesh.VIP, 80, 0);
          assertTrue(through.startsWith("data:echo-"), through);
          assertEquals(
              1.0,
              node.metric("nodemesh_policy_denials_total", "reason=\"no_config\""),
              "no refusal once config is in force");
        } finally {
          node.stopProxy();
        }
      }
    }
  }

  @Test
  void enrolmentClearsAStaleVipEntryAndTheSamePortsAreCapturedAfter() throws Exception {
    try (Interception.Setup setup = mode.setUp()) {
      InterceptionMode interception = setup.nextNode();
      try (TestNode node = TestNode.create(tmp.resolve("node"))) {
        node.addStandardMesh();
        int port = FixedPortControlPlane.freePort();
        try (ControlPlane cp = FixedPortControlPlane.start(node, port)) {
          startProxy(node, interception, port);
          waitForConfig(node);
          for (String p : List.of("echo-1", "echo-2", "echo-3")) {
            node.enrol(p);
          }
          // Conntrack tracks in the client's netns (a rule that needs it, as any stateful rule of
          // a CNI or the pod's own would), before the pod is enrolled.
          node.pod("client")
              .exec(
                  "iptables",
                  "-A",
                  "OUTPUT",
                  "-m",
                  "conntrack",
                  "--ctstate",
                  "NEW",
                  "-j",
                  "ACCEPT");
          // Before capture: the SYN goes to the VIP as-is; nothing answers it there.
          assertEquals("timeout", connect(node, "client", Mesh.VIP, 80, SOURCE_PORT));
          List<CtNetlink.Entry> before = untranslatedToward(node, "client", Mesh.VIP, 80);
          assertEquals(1, before.size(), before.toString());
          assertEquals(SOURCE_PORT, before.get(0).original().srcPort());

          node.enrol("client");
          assertEquals(List.of(), untranslatedToward(node, "client", Mesh.VIP, 80));
          // The same source port to the same VIP:port is captured now.
          String after = connect(node, "client", Mesh.VIP, 80, SOURCE_PORT);
          assertTrue(after.startsWith("data:echo-"), after);
        } finally {
          node.stopProxy();
        }
      }
    }
  }
}
