package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Replies.readAll;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.CloseScriptServer;
import dev.nodemesh.proxy.testing.IdleLoops;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Every order in which the two ends of a relayed TCP connection can end it — the client's FIN
 * first, the server's FIN first, both at once, an RST from either side — on the L4 path on one node
 * and through the HBONE tunnel across nodes, in both interception modes. Each connection must end
 * the way the ends asked, and afterwards no proxy event loop may spin: the I/O threads are checked
 * over an idle second while half-closed and fully shut-down connections are still held open by both
 * apps, and again after they are gone. (A socket the proxy leaves open after both of its directions
 * ended reports EPOLLHUP on every epoll_wait, level-triggered in Netty 4.2, until it is closed;
 * issue 18 saw such a spin on a node under the cross-node bench.)
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class CloseSequencesRootTest {
  private static final String NEAR_VIP = "10.97.0.50";
  private static final String FAR_VIP = "10.97.0.51";
  private static final int PORT = 9000;
  private static final int ROUNDS = 8;

  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static TwoNodeCluster cluster;
  private static Interception.Setup modes;
  private static CloseScriptServer near;
  private static CloseScriptServer far;

  @BeforeParameterizedClassInvocation
  static void setUp(Interception mode) throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp.resolve(mode.name()));
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("near", 12);
    n2.addPod("far", 11);
    near = CloseScriptServer.start(n1.pod("near").path(), PORT, "near");
    far = CloseScriptServer.start(n2.pod("far").path(), PORT, "far");
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("near", n1.ip("near"), "near", "node-1", "near")
            + Mesh.pod("far", n2.ip("far"), "far", "node-2", "far"));
    cluster.writeConfig(
        "services.yaml",
        Mesh.service("near", NEAR_VIP, "near") + "---\n" + Mesh.service("far", FAR_VIP, "far"));
    cluster.startProxiesAllowingAll(modes, TunnelSettings.defaults());
    assertFalse(n1.enrol("client").getAlreadyEnrolled());
    assertFalse(n1.enrol("near").getAlreadyEnrolled());
    assertFalse(n2.enrol("far").getAlreadyEnrolled());
  }

  @AfterParameterizedClassInvocation
  static void tearDown() throws Exception {
    try {
      Teardown.close(near, far, cluster, modes);
    } finally {
      near = null;
      far = null;
      cluster = null;
      modes = null;
    }
  }

  @Test
  void everyCloseOrderEndsCleanlyOnOneNode() throws Exception {
    everyCloseOrder(NEAR_VIP, near);
  }

  @Test
  void everyCloseOrderEndsCleanlyAcrossNodes() throws Exception {
    everyCloseOrder(FAR_VIP, far);
  }

  private void everyCloseOrder(String vip, CloseScriptServer server) throws Exception {
    List<Conn> held = new ArrayList<>();
    int heldBefore = server.held();
    try {
      for (int i = 0; i < ROUNDS; i++) {
        clientFinFirst(vip, i);
        serverFinFirst(vip);
        serverResets(vip);
        clientResets(vip);
        held.add(clientFinServerHolds(vip));
        held.add(bothFinBothHold(vip));
        held.add(bothFinAtOnce(vip));
      }
      int expectHeld = heldBefore + 3 * ROUNDS;
      waitForHeld(server, expectHeld);
      IdleLoops.assertQuiet(
          vip + ": with " + held.size() + " half- and fully-closed connections held");
    } finally {
      for (Conn c : held) {
        c.close();
      }
    }
    IdleLoops.assertQuiet(vip + ": after every connection ended");
  }

  private Conn open(String vip) throws IOException {
    return cluster.node1.podConnect("client", vip, PORT);
  }

  /** The client sends, half-closes and reads the echo until the server's FIN. */
  private void clientFinFirst(String vip, int round) throws IOException {
    String data = ("round " + round + " ").repeat(2000);
    try (Conn c = open(vip)) {
      write(c, "echo\n" + data);
      c.shutdownOutput();
      assertEquals(data, readAll(c), "the echo of a client that half-closed first");
    }
  }

  /** The server writes and half-closes first; the client still sends after that, then closes. */
  private void serverFinFirst(String vip) throws IOException {
    try (Conn c = open(vip)) {
      write(c, "fin-first\n");
      assertEquals("bye\n", readAll(c), "what a server that half-closed first sent");
      write(c, "still talking after the server's FIN\n");
      c.shutdownOutput();
    }
  }

  /** The server writes one line and resets; the client sees the line or the reset, then EOF. */
  private void serverResets(String vip) throws IOException {
    try (Conn c = open(vip)) {
      write(c, "rst\n");
      try {
        String got = readAll(c);
        assertTrue("x\n".startsWith(got), "before the server's reset: " + got);
      } catch (IOException e) {
        // The reset may overtake the line: passed on as an RST, which is right too.
      }
    }
  }

  /** The client sends part of a request and resets. */
  private void clientResets(String vip) throws IOException {
    Conn c = open(vip);
    write(c, "echo\nsome of it");
    c.closeWithReset();
  }

  /** The client half-closes; the server reads the EOF and keeps its side open: held open. */
  private Conn clientFinServerHolds(String vip) throws IOException {
    Conn c = open(vip);
    write(c, "hold\n");
    c.shutdownOutput();
    return c;
  }

  /** The server half-closes at once; the client reads its FIN, then half-closes: both hold. */
  private Conn bothFinBothHold(String vip) throws IOException {
    Conn c = open(vip);
    write(c, "hold-fin\n");
    assertEquals("", readAll(c), "a server that half-closed at once sent nothing");
    c.shutdownOutput();
    return c;
  }

  /** Both ends half-close without waiting for each other, then both hold their sockets open. */
  private Conn bothFinAtOnce(String vip) throws IOException {
    Conn c = open(vip);
    write(c, "hold-fin\n");
    c.shutdownOutput();
    assertEquals("", readAll(c), "a server that half-closed at once sent nothing");
    return c;
  }

  private static void waitForHeld(CloseScriptServer server, int n) throws InterruptedException {
    long deadline = System.nanoTime() + 30_000_000_000L;
    while (server.held() < n && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertTrue(
        server.held() >= n, "the server holds " + server.held() + " of " + n + " connections");
  }

  private static void write(Conn c, String s) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(s.getBytes(StandardCharsets.UTF_8));
    while (b.hasRemaining()) {
      c.write(b);
    }
  }
}
