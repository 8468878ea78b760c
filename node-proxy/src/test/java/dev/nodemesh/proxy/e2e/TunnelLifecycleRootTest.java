package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.Tunnel;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The life of pooled HBONE connections between two nodes: closed when idle (and a new one made for
 * the next stream), and drained after the server's GOAWAY (open streams finish byte-identical, new
 * ones go to a new connection). The idle timeout is one second here. Both interception modes, one
 * cluster each; the client sockets are made in the client pod ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TunnelLifecycleRootTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final String ECHO_VIP = "10.97.0.10";
  private static final TunnelSettings SETTINGS =
      new TunnelSettings(100, 1000, 4 << 20, 16 << 20, Duration.ofSeconds(1));

  /** Also handed to the static set-up, which makes one cluster per mode. */
  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static TwoNodeCluster cluster;
  private static Interception.Setup modes;
  private final Random random = new Random(5);

  /** One cluster per interception mode, shared by the tests of that mode. */
  @BeforeParameterizedClassInvocation
  static void setUp(Interception mode) throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp.resolve(mode.name()));
    cluster.addClientAndEcho();
    cluster.writeConfig("services.yaml", Mesh.service("echo", ECHO_VIP, "echo"));
    cluster.startProxiesAllowingAll(modes, SETTINGS);
    cluster.enrolClientAndEcho();
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

  @BeforeEach
  void noConnectionLeftFromAnotherTest() throws Exception {
    Await.until(WAIT, "no pooled connection on node-1", () -> clientConnections() == 0);
  }

  @Test
  void anIdleConnectionIsClosedAndTheNextStreamOpensANewOne() throws Exception {
    try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      roundTrip(ch, 4096);
      ch.shutdownOutput();
      assertEquals(-1, ch.read(ByteBuffer.allocate(1)));
    }
    assertEquals(1, clientConnections(), "the connection stays pooled for the idle time");
    Await.until(WAIT, "the idle connection closed on node-1", () -> clientConnections() == 0);
    Await.until(
        WAIT,
        "node-2 saw it close",
        () ->
            cluster.node2.metric("nodemesh_tunnel_connections_open", "reporter=\"destination\"")
                == 0);

    try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      roundTrip(ch, 4096);
      assertEquals(1, clientConnections(), "a new connection for the next stream");
      // Longer than the idle timeout: a connection with an open stream is not idle.
      Thread.sleep(2500);
      assertEquals(1, clientConnections());
      roundTrip(ch, 64 * 1024);
      ch.shutdownOutput();
      assertEquals(-1, ch.read(ByteBuffer.allocate(1)));
    }
    Await.until(WAIT, "closed again once idle", () -> clientConnections() == 0);
  }

  @Test
  void afterTheServersGoAwayOpenStreamsFinishAndNewOnesUseANewConnection() throws Exception {
    Tunnel node2 = cluster.node2.proxy().dataPlane().tunnel();
    try (Conn before = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      roundTrip(before, 256 * 1024);
      assertEquals(1, clientConnections());

      assertTrue(node2.goAway().await(10, TimeUnit.SECONDS), "GOAWAY written");

      try (Conn after = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
        roundTrip(after, 256 * 1024);
        assertEquals(2, clientConnections(), "the new stream went to a new connection");
        // The stream opened before the GOAWAY goes on, byte for byte.
        roundTrip(before, 1024 * 1024);
        before.shutdownOutput();
        assertEquals(-1, before.read(ByteBuffer.allocate(1)));
        // Its drained connection closes once its last stream ended.
        Await.until(WAIT, "the drained connection closed", () -> clientConnections() == 1);
        roundTrip(after, 4096);
        after.shutdownOutput();
        assertEquals(-1, after.read(ByteBuffer.allocate(1)));
      }
    }
  }

  /** Sends {@code size} random bytes through the echo server and checks they come back. */
  private void roundTrip(Conn ch, int size) throws IOException {
    byte[] out = new byte[size];
    random.nextBytes(out);
    ByteBuffer w = ByteBuffer.wrap(out);
    ByteBuffer r = ByteBuffer.allocate(size);
    // The echo server answers as it reads; write and read in turns so neither side blocks.
    while (w.hasRemaining() || r.hasRemaining()) {
      if (w.hasRemaining()) {
        int end = Math.min(w.limit(), w.position() + 64 * 1024);
        ByteBuffer slice = w.duplicate().limit(end);
        while (slice.hasRemaining()) {
          ch.write(slice);
        }
        w.position(end);
      }
      int target = w.position();
      while (r.position() < target) {
        if (ch.read(r) < 0) {
          throw new IOException("stream ended after " + r.position() + " of " + size);
        }
      }
    }
    assertArrayEquals(out, r.array());
  }

  private static double clientConnections() {
    return cluster.node1.metric("nodemesh_tunnel_connections_open", "reporter=\"source\"");
  }
}
