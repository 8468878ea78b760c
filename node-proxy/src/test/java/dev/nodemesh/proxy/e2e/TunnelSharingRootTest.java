package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.BulkEcho;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Many streams sharing HBONE tunnel connections (issue 18): the client allows 250 streams per
 * tunnel connection and every stream goes to one pod (the tunnel's gateway is the destination pod),
 * so streams ride the same connection as far as the server's stream limit lets them (checked: no
 * other connection is opened for the bulk and the stalled-reader tests). Bulk both ways at once
 * arrives byte-identical; 200 concurrent 8 MiB streams all finish, none starved; and a stream whose
 * receiving app stops reading holds only itself: HTTP/2 flow control stops that stream while the
 * others on the connection carry on, and it resumes when the app reads again.
 *
 * <p>Both interception modes, one cluster each; the clients are sockets of this JVM made in the
 * client pod ({@link TestNode#podConnect}: in eBPF mode by a helper process in the proxy's cgroup).
 *
 * <p>Sizes are knobs for the full run: {@code -Dnodemesh.tunnel.gib=1} (default 1/4 GiB
 * each way) and {@code -Dnodemesh.tunnel.streamMib=8} (default 1 MiB per stream), so the class
 * stays within a minute or two of CI time on a quiet machine. The full sizes take minutes per test
 * in eBPF mode (every byte also passes the helper process that holds the client's socket), so each
 * test's bound is {@link #TIMEOUT_S}, not the build's 3-minute default.
 */
@RootTest
@Timeout(
    value = 15,
    unit = TimeUnit.MINUTES) // per test; the futures below are bounded by TIMEOUT_S
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TunnelSharingRootTest {
  private static final String ECHO_VIP = "10.97.0.40";
  private static final String STALL_VIP = "10.97.0.41";
  private static final int STALL_PORT = 9100;
  private static final long TIMEOUT_S = Long.getLong("nodemesh.tunnel.timeoutS", 600);

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
    cluster.addClientAndEcho();
    cluster.writeConfig(
        "services.yaml",
        Mesh.service("echo", ECHO_VIP, "echo")
            + "---\n"
            // A second port of the same pod: its streams share echo-1's tunnel connection.
            + Mesh.service("stall", STALL_VIP, "echo").replace("9000", String.valueOf(STALL_PORT)));
    TunnelSettings d = TunnelSettings.defaults();
    TunnelSettings oneConnection =
        new TunnelSettings(250, 1000, d.streamWindow(), d.connectionWindow(), d.idleTimeout());
    cluster.startProxiesAllowingAll(modes, oneConnection);
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

  @Test
  void bulkBothWaysAtOnceArrivesByteIdentical() throws Exception {
    double gib = Double.parseDouble(System.getProperty("nodemesh.tunnel.gib", "0.25"));
    long size = (long) (gib * 1024 * 1024 * 1024);
    double connections = warmTunnel();
    try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      // The echo sends every byte back while the writer is still sending: both directions of
      // the one tunnel stream are full at the same time.
      BulkEcho echo = BulkEcho.through(ch, size, 3);
      assertEquals(size, echo.received());
      assertArrayEquals(echo.sentDigest(), echo.receivedDigest());
    }
    assertEquals(connections, tunnelConnections(), "the one tunnel connection carried it");
  }

  @Test
  void twoHundredConcurrentStreamsAllFinishAndNoneStarves() throws Exception {
    int count = 200;
    long size = Long.getLong("nodemesh.tunnel.streamMib", 1) * 1024 * 1024;
    double connections = warmTunnel();
    ExecutorService pool = Executors.newFixedThreadPool(count);
    try {
      CountDownLatch go = new CountDownLatch(1);
      List<Future<Long>> done = new ArrayList<>();
      for (int i = 0; i < count; i++) {
        long seed = 100 + i;
        done.add(
            pool.submit(
                () -> {
                  try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
                    go.await();
                    long start = System.nanoTime();
                    BulkEcho echo = BulkEcho.through(ch, size, seed);
                    long took = System.nanoTime() - start;
                    assertEquals(size, echo.received(), "stream " + seed);
                    assertArrayEquals(echo.sentDigest(), echo.receivedDigest(), "stream " + seed);
                    return took;
                  }
                }));
      }
      go.countDown();
      long[] took = new long[count];
      for (int i = 0; i < count; i++) {
        took[i] = done.get(i).get(TIMEOUT_S, TimeUnit.SECONDS);
      }
      Arrays.sort(took);
      long median = took[count / 2];
      // The fairness bound: a stream that took more than 3x the median was starved.
      assertTrue(
          took[count - 1] <= 3 * median,
          "slowest " + took[count - 1] / 1_000_000 + " ms vs median " + median / 1_000_000 + " ms");
      // 200 streams need two connections when the server allows 100 streams per connection (the
      // h2c limit); the stalled-reader test below checks sharing within one connection.
      assertTrue(
          tunnelConnections() <= connections + 2,
          "streams share pooled connections: " + tunnelConnections());
    } finally {
      pool.shutdownNow();
    }
  }

  @Test
  void aStreamWhoseAppStopsReadingHoldsOnlyItselfAndResumes() throws Exception {
    long stalledSize = 64L * 1024 * 1024;
    double connections = warmTunnel();
    CountDownLatch readAgain = new CountDownLatch(1);
    AtomicLong stalledReceived = new AtomicLong();
    ServerSocketChannel server;
    try (NetworkNamespace ns = NetworkNamespace.open(cluster.node2.pod("echo-1").path());
        NetworkNamespace.Scope in = ns.enter()) {
      server = ServerSocketChannel.open();
    }
    ExecutorService threads = Executors.newFixedThreadPool(3);
    try (server) {
      server.bind(new InetSocketAddress("0.0.0.0", STALL_PORT));
      // The app: accepts, reads nothing until told, then reads everything and digests it.
      Future<byte[]> appDigest =
          threads.submit(
              () -> {
                try (SocketChannel c = server.accept()) {
                  readAgain.await();
                  MessageDigest d = MessageDigest.getInstance("SHA-256");
                  ByteBuffer buf = ByteBuffer.allocate(256 * 1024);
                  for (int n = c.read(buf); n >= 0; n = c.read(buf)) {
                    d.update(buf.array(), 0, n);
                    stalledReceived.addAndGet(n);
                    buf.clear();
                  }
                  return d.digest();
                }
              });
      Conn stalled = cluster.node1.podConnect("client", STALL_VIP, STALL_PORT);
      AtomicLong written = new AtomicLong();
      Future<byte[]> sentDigest =
          threads.submit(
              () -> {
                try (stalled) {
                  MessageDigest d = MessageDigest.getInstance("SHA-256");
                  Random r = new Random(42);
                  byte[] chunk = new byte[256 * 1024];
                  for (long sent = 0; sent < stalledSize; sent += chunk.length) {
                    r.nextBytes(chunk);
                    d.update(chunk);
                    ByteBuffer b = ByteBuffer.wrap(chunk);
                    while (b.hasRemaining()) {
                      written.addAndGet(stalled.write(b));
                    }
                  }
                  stalled.shutdownOutput();
                  return d.digest();
                }
              });
      // Wait until the writer is blocked: what it wrote stops growing (the stream's window, the
      // proxies' buffers and the sockets' are full).
      long last = -1;
      for (int i = 0; i < 200 && written.get() != last; i++) {
        last = written.get();
        Thread.sleep(250);
      }
      assertTrue(written.get() < stalledSize, "the stalled stream is held back: " + written.get());
      // Meanwhile, other streams on the same tunnel connection move data freely.
      for (int i = 0; i < 4; i++) {
        try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
          BulkEcho echo = BulkEcho.through(ch, 8L * 1024 * 1024, 500 + i);
          assertEquals(
              8L * 1024 * 1024, echo.received(), "stream " + i + " beside the stalled one");
          assertArrayEquals(echo.sentDigest(), echo.receivedDigest());
        }
      }
      assertEquals(connections, tunnelConnections(), "the stalled stream shares the connection");
      assertEquals(0, stalledReceived.get(), "the app has read nothing yet");
      // The app reads again: the stalled stream resumes and delivers every byte.
      readAgain.countDown();
      byte[] sent = sentDigest.get(TIMEOUT_S, TimeUnit.SECONDS);
      assertArrayEquals(sent, appDigest.get(TIMEOUT_S, TimeUnit.SECONDS));
      assertEquals(stalledSize, stalledReceived.get());
    } finally {
      readAgain.countDown();
      threads.shutdownNow();
    }
  }

  /**
   * Opens echo-1's tunnel connection with one short stream, and returns how many tunnel connections
   * node-1 holds then: a test that ends with the same number opened no other one.
   */
  private static double warmTunnel() throws Exception {
    try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      assertEquals(256 * 1024, BulkEcho.through(ch, 256 * 1024, 1).received());
    }
    return tunnelConnections();
  }

  /** Tunnel connections node-1's proxy holds open now. */
  private static double tunnelConnections() {
    double sum = 0;
    for (String l : cluster.node1.proxy().dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith("nodemesh_tunnel_connections_open{") && l.contains("reporter=\"source\"")) {
        sum += Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }
}
