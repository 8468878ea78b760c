package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.util.internal.PlatformDependent;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Hostile and vanishing clients on the L7 path (issue 16), through a real node proxy in network
 * namespaces: slowloris connections are closed at the request-header timeout while a victim pod's
 * requests all succeed, and so do they beside slow bodies and a 1 GiB POST to a Service whose
 * endpoint never accepts; a large POST to an endpoint that never answers its SYN holds a bounded
 * amount of the proxy's direct memory; a client that leaves (its socket reset) while a frozen
 * endpoint sits on its request gets that upstream connection closed at once, not left open; one
 * that only sends its FIN gets it closed at the half-close timeout (1 s here): a FIN cannot be told
 * from a half-close whose answer is still owed ({@code
 * L7RootTest.closedConnectionsLeaveNoClose...}) until that answer is late.
 *
 * <p>Both interception modes: the hostile and vanishing clients are sockets of their pod's app
 * ({@link TestNode#podConnect}), the victim is curl in its pod. The endpoints (the frozen server
 * here, the HTTP server in web-1) are reached by the proxy's delivery in both modes.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class L7HostileClientRootTest {
  static final String VIP = "10.97.0.40";
  static final String BLACKHOLE_VIP = "10.97.0.41";
  static final String FROZEN_VIP = "10.97.0.42";
  static final Duration HALF_CLOSE = Duration.ofSeconds(1);
  // In the node's subnet, but no pod has it: ARP never resolves, so the SYN is never answered.
  static final String NOBODY = TestNode.SUBNET + 99;

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;
  private ServerSocket frozen;
  private final List<Socket> frozenAccepted = new ArrayList<>();
  private final CountDownLatch frozenGotRequest = new CountDownLatch(1);
  private Thread frozenThread;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("attacker", 12);
    node.addPod("web-1", 11);
    node.addPod("frozen-1", 13);
    node.serveHttp("web-1", 8080);
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("frozen-1").path());
        NetworkNamespace.Scope in = ns.enter()) {
      frozen = new ServerSocket();
      frozen.bind(new InetSocketAddress("0.0.0.0", 8080), 16);
    }
    frozenThread = new Thread(this::frozenLoop, "frozen-server");
    frozenThread.setDaemon(true);
    frozenThread.start();
    node.writeConfig(
        "mesh.yaml",
        Mesh.httpPod("client", 10, "client")
            + Mesh.httpPod("attacker", 12, "attacker")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpPod("frozen-1", 13, "frozen")
            + Mesh.pod("nobody-1", NOBODY, "nobody", "other-node", "")
            + Mesh.httpService("web", VIP, "web")
            + Mesh.httpService("blackhole", BLACKHOLE_VIP, "nobody")
            + Mesh.httpService("frozen", FROZEN_VIP, "frozen")
            + Mesh.httpRoute("web")
            + Mesh.httpRoute("blackhole")
            + Mesh.httpRoute("frozen"));
    modes = mode.setUp();
    node.startProxy(
        node.proxyConfig()
            .interception(modes.nextNode())
            .timeouts(
                new ConnectionTimeouts(
                    Duration.ofSeconds(1),
                    Duration.ofMinutes(10),
                    Duration.ofHours(1),
                    Duration.ofSeconds(60),
                    Duration.ofSeconds(10),
                    HALF_CLOSE))
            .build());
    for (String pod : List.of("client", "attacker", "web-1", "frozen-1")) {
      node.enrol(pod);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (frozen != null) {
        frozen.close();
        frozenThread.join(5_000);
      }
      synchronized (frozenAccepted) {
        for (Socket s : frozenAccepted) {
          s.close();
        }
      }
    } finally {
      Teardown.close(node, modes);
    }
  }

  /** Accepts, reads a request head and never answers; the test watches the socket's end. */
  private void frozenLoop() {
    while (!frozen.isClosed()) {
      try {
        Socket s = frozen.accept();
        synchronized (frozenAccepted) {
          frozenAccepted.add(s);
        }
      } catch (IOException e) {
        return;
      }
    }
  }

  private double timeouts(String reason) {
    return node.proxy()
        .dataPlane()
        .metrics()
        .registry()
        .counter(ConnectionTimeouts.METER, "reason", reason)
        .count();
  }

  static final int VICTIM_REQUESTS = 30;

  /**
   * The victim: one request every 100 ms for 3 s, {@code eachTick} (the attack's next step) before
   * each; returns how many were answered 200 (errors count, not latency).
   */
  private int victimServedWhile(Runnable eachTick) throws Exception {
    int ok = 0;
    for (int i = 0; i < VICTIM_REQUESTS; i++) {
      eachTick.run();
      String code =
          node.curl(
              "client",
              "-s",
              "-o",
              "/dev/null",
              "-w",
              "%{http_code}",
              "--max-time",
              "2",
              "http://" + VIP + "/victim");
      if ("200".equals(code.trim())) {
        ok++;
      }
      Thread.sleep(100);
    }
    return ok;
  }

  /** One more byte on each open attacker connection; one the proxy has closed is skipped. */
  private static void drip(List<Conn> attackers, String b) {
    for (Conn a : attackers) {
      if (a.isOpen()) {
        try {
          a.write(ByteBuffer.wrap(b.getBytes(StandardCharsets.US_ASCII)));
        } catch (IOException closedByProxy) {
          // expected once a timeout has fired
        }
      }
    }
  }

  @Test
  void slowlorisConnectionsAreClosedWhileTheVictimIsServed() throws Exception {
    List<Conn> attackers = new ArrayList<>();
    try {
      for (int i = 0; i < 50; i++) {
        Conn a = node.podConnect("attacker", VIP, 80);
        a.write(
            ByteBuffer.wrap("GET / HTTP/1.1\r\nHost: web\r\n".getBytes(StandardCharsets.US_ASCII)));
        attackers.add(a);
      }
      assertEquals(
          VICTIM_REQUESTS,
          victimServedWhile(() -> drip(attackers, "X")),
          "every victim request succeeded during the attack");
      int closed = 0;
      for (Conn a : attackers) {
        a.setReadTimeout(Duration.ofSeconds(3));
        try {
          if (a.read(ByteBuffer.allocate(1)) < 0) {
            closed++;
          }
        } catch (SocketTimeoutException stillOpen) {
          // not closed: counted as such
        } catch (IOException reset) {
          closed++;
        }
      }
      assertEquals(attackers.size(), closed, "every slowloris connection was closed by the proxy");
      assertTrue(timeouts(ConnectionTimeouts.REQUEST_HEADER) >= attackers.size());
    } finally {
      for (Conn a : attackers) {
        a.close();
      }
    }
  }

  private static double directMemory() {
    if (ByteBufAllocator.DEFAULT instanceof ByteBufAllocatorMetricProvider p) {
      return p.metric().usedDirectMemory();
    }
    return PlatformDependent.usedDirectMemory();
  }

  @Test
  void aLargePostToAnEndpointThatNeverAnswersHoldsBoundedMemory() throws Exception {
    int bodyBytes = 48 << 20;
    double before = directMemory();
    double[] peak = {before};
    try (Conn c = node.podConnect("client", BLACKHOLE_VIP, 80)) {
      Thread writer =
          new Thread(
              () -> {
                try {
                  c.write(
                      ByteBuffer.wrap(
                          ("POST /upload HTTP/1.1\r\nHost: blackhole\r\ncontent-length: "
                                  + bodyBytes
                                  + "\r\n\r\n")
                              .getBytes(StandardCharsets.US_ASCII)));
                  ByteBuffer chunk = ByteBuffer.allocate(64 << 10);
                  for (int sent = 0; sent < bodyBytes; sent += chunk.capacity()) {
                    chunk.clear();
                    c.write(chunk);
                  }
                } catch (IOException e) {
                  // the proxy answered 503 and closed, or the test ended
                }
              },
              "blackhole-writer");
      writer.setDaemon(true);
      writer.start();
      // Sample while the proxy waits for the SYN that is never answered (ARP gives up after ~3 s).
      long end = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(2_000);
      while (System.nanoTime() < end) {
        peak[0] = Math.max(peak[0], directMemory());
        Thread.sleep(20);
      }
      double grown = peak[0] - before;
      assertTrue(
          grown < 8 << 20,
          "direct memory grew by " + (long) grown + " bytes while the upstream connect hung");
    }
  }

  /**
   * The other two attacks of issue 16's list beside a victim: slow bodies (request heads announcing
   * 1 MiB, then a byte every 100 ms, to an endpoint that reads and never answers) and a 1 GiB POST
   * to a Service whose endpoint never accepts. Every victim request succeeds meanwhile, and the
   * proxy's direct memory stays bounded: the 1 GiB body is read only as fast as it can go somewhere
   * (nowhere), so it is never buffered.
   */
  @Test
  void slowBodiesAndAGigabytePostToANeverAcceptingEndpointLeaveTheVictimServed() throws Exception {
    long gib = 1L << 30;
    List<Conn> slow = new ArrayList<>();
    AtomicLong sent = new AtomicLong();
    Conn big = node.podConnect("attacker", BLACKHOLE_VIP, 80);
    Thread writer =
        new Thread(
            () -> {
              try {
                big.write(
                    ByteBuffer.wrap(
                        ("POST /upload HTTP/1.1\r\nHost: blackhole\r\ncontent-length: "
                                + gib
                                + "\r\n\r\n")
                            .getBytes(StandardCharsets.US_ASCII)));
                ByteBuffer chunk = ByteBuffer.allocate(64 << 10);
                while (sent.get() < gib) {
                  chunk.clear();
                  sent.addAndGet(big.write(chunk));
                }
              } catch (IOException e) {
                // the proxy answered 503 and closed, or the test ended
              }
            },
            "gigabyte-writer");
    writer.setDaemon(true);
    double before = directMemory();
    try {
      for (int i = 0; i < 20; i++) {
        Conn a = node.podConnect("attacker", FROZEN_VIP, 80);
        a.write(
            ByteBuffer.wrap(
                "POST /upload HTTP/1.1\r\nHost: frozen\r\ncontent-length: 1048576\r\n\r\n"
                    .getBytes(StandardCharsets.US_ASCII)));
        slow.add(a);
      }
      writer.start();
      double[] peak = {before};
      int ok =
          victimServedWhile(
              () -> {
                drip(slow, "x");
                peak[0] = Math.max(peak[0], directMemory());
              });
      assertEquals(VICTIM_REQUESTS, ok, "every victim request succeeded during the attacks");
      double grown = peak[0] - before;
      assertTrue(
          grown < 16 << 20,
          "direct memory grew by "
              + (long) grown
              + " bytes under 20 slow bodies and a 1 GiB POST ("
              + sent.get()
              + " bytes of it written)");
      assertTrue(sent.get() < gib, "the proxy never took the whole gigabyte: " + sent.get());
    } finally {
      big.close();
      for (Conn a : slow) {
        a.close();
      }
      writer.join(5_000);
    }
  }

  /**
   * Sends a request to the frozen endpoint and returns the endpoint's side of the upstream
   * connection once the request has reached it.
   */
  private Socket requestAtTheFrozenEndpoint(Conn c) throws Exception {
    c.write(
        ByteBuffer.wrap(
            "GET /hang HTTP/1.1\r\nHost: frozen\r\n\r\n".getBytes(StandardCharsets.US_ASCII)));
    Socket upstream = null;
    long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
    while (upstream == null && System.nanoTime() < until) {
      synchronized (frozenAccepted) {
        if (!frozenAccepted.isEmpty()) {
          upstream = frozenAccepted.get(0);
        }
      }
      Thread.sleep(20);
    }
    assertTrue(upstream != null, "the request reached the frozen endpoint");
    upstream.setSoTimeout(5_000);
    assertTrue(upstream.getInputStream().read(new byte[4096]) > 0, "the endpoint got the request");
    return upstream;
  }

  /** What the endpoint's read gives within {@code millis}: -1 closed, 0 still open. */
  private static int endWithin(Socket upstream, int millis) throws IOException {
    upstream.setSoTimeout(millis);
    try {
      return upstream.getInputStream().read(new byte[4096]);
    } catch (java.net.SocketTimeoutException stillOpen) {
      return 0;
    } catch (IOException reset) {
      return -1;
    }
  }

  @Test
  void aClientLeavingCancelsTheRequestAFrozenEndpointSitsOn() throws Exception {
    Conn c = node.podConnect("client", FROZEN_VIP, 80);
    Socket upstream = requestAtTheFrozenEndpoint(c);
    // The client gives up: killed, or closed with unread data, its socket is reset.
    c.closeWithReset();
    assertEquals(
        -1,
        endWithin(upstream, 2_000),
        "the proxy closed the upstream request within 2 s of the client leaving");
  }

  @Test
  void aClientThatOnlySendsItsFinHasTheRequestCancelledAtTheHalfCloseTimeout() throws Exception {
    try (Conn c = node.podConnect("client", FROZEN_VIP, 80)) {
      Socket upstream = requestAtTheFrozenEndpoint(c);
      c.shutdownOutput(); // a FIN only: a client gone with nothing unread looks the same
      assertEquals(
          -1,
          endWithin(upstream, (int) HALF_CLOSE.toMillis() + 3_000),
          "the upstream request was cancelled once the half-close timeout ran out");
      assertEquals(1.0, timeouts(ConnectionTimeouts.HTTP_HALF_CLOSE));
      ByteBuffer rest = ByteBuffer.allocate(64);
      c.setReadTimeout(Duration.ofSeconds(5));
      assertEquals(-1, c.read(rest), "the client's connection is closed without an answer");
    }
  }
}
