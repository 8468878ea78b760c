package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PeerClose;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.IOException;
import java.net.ConnectException;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A drain ({@link NodeProxy#drain}, what the SIGTERM hook calls) on a two-node cluster: the client
 * pod is on node-1, the server pod (HTTP with an HTTPRoute on port 80, echo on 9000) on node-2, so
 * everything crosses an HBONE tunnel. Draining either node lets a long-lived L4 connection and a
 * slow HTTP request in flight finish, answers /ready with 503 at once, and cuts (and counts) a
 * relay still open when the grace period ends.
 *
 * <p>Both interception modes: the clients are pod processes and sockets made in the client pod
 * ({@link TestNode#curl}, {@link TestNode#podConnect}). A drain closes the in-pod listeners but
 * leaves the pods' capture in place (eBPF: programs, links and the pods' registrations stay pinned
 * and attached when the proxy exits; iptables: the rules stay in the pods), so the relays accepted
 * before it run on untouched while a new connection from a drained node's pod is refused instead of
 * leaving the mesh.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class DrainRootTest {
  private static final String VIP = "10.97.0.30";
  private static final Duration GRACE = Duration.ofSeconds(6);

  @Parameter Interception mode;
  @TempDir Path tmp;
  private Interception.Setup modes;
  private TwoNodeCluster cluster;
  private HttpTestServer web;
  private final Random random = new Random(15);

  @BeforeEach
  void setUp() throws Exception {
    cluster = TwoNodeCluster.create(tmp);
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n2.addPod("web-1", 11);
    web = n2.serveHttp("web-1", 8080);
    n2.serve("web-1", 9000, TestServer.Mode.ECHO);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("web-1", n2.ip("web-1"), "web", "node-2", "web"));
    cluster.writeConfig("services.yaml", Mesh.service("web", VIP, "web"));
    cluster.writeConfig("routes.yaml", ROUTE);
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    modes = mode.setUp();
    cluster.startProxies(
        modes,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF);
    n1.enrol("client");
    n2.enrol("web-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(cluster, modes);
  }

  @Test
  void drainingTheClientsNodeFinishesWhatIsOpenAndCutsWhatOutlivesTheGrace() throws Exception {
    assertEquals(1, drainWhileBusy(cluster.node1), "the relay left open is cut");
    assertEquals(1.0, drainCounter(cluster.node1.proxy(), "cut"));
    assertTrue(
        drainCounter(cluster.node1.proxy(), "drained") >= 2.0,
        "the long-lived relay and the slow request's connection drained");
    // The proxy is gone and the client pod is still captured: a new connection, even straight to
    // the server pod's address, is refused at the pod's closed listener rather than sent around
    // the mesh (with the capture gone it would reach web-1, whose node serves it).
    assertThrows(
        ConnectException.class,
        () -> cluster.node1.podConnect("client", cluster.node2.ip("web-1"), 9000).close());
  }

  @Test
  void drainingTheServersNodeSendsGoAwayAndTheTunnelStreamsFinish() throws Exception {
    // Node-2 sees tunnel connections, not relays: the one carrying the relay left open is cut,
    // and so is one carrying node-1's pooled keep-alive HTTP connection, if the pool put that on
    // a connection of its own (inside a stream node-2 cannot tell an idle HTTP connection).
    int cut = drainWhileBusy(cluster.node2);
    assertTrue(cut >= 1 && cut <= 2, "cut " + cut);
    assertEquals(cut, drainCounter(cluster.node2.proxy(), "cut"));
  }

  /** Drains {@code draining} with a relay open past the grace period; returns the number cut. */
  private int drainWhileBusy(TestNode draining) throws Exception {
    NodeProxy proxy = draining.proxy();
    // Threads of its own for the slow request and the drain: the common pool has one worker on a
    // two-core machine, where the drain would wait for the request to end and test nothing.
    ExecutorService threads = Executors.newFixedThreadPool(2);
    try (Conn longLived = cluster.node1.podConnect("client", VIP, 9000);
        Conn leftOpen = cluster.node1.podConnect("client", VIP, 9000)) {
      roundTrip(longLived, 64 * 1024);
      roundTrip(leftOpen, 4096);
      CompletableFuture<String> slow =
          CompletableFuture.supplyAsync(
              () -> curl("-s", "-i", "--max-time", "30", "http://" + VIP + "/slow"), threads);
      // The server counts a request when it starts on it; /slow then answers 2 s later.
      await(() -> web.requests() > 0, "the slow request reached the server");

      CompletableFuture<Integer> drain =
          CompletableFuture.supplyAsync(
              () -> {
                try {
                  return proxy.drain(GRACE);
                } catch (InterruptedException e) {
                  throw new IllegalStateException(e);
                }
              },
              threads);
      await(() -> readyStatus(proxy) == 503, "/ready answers 503 while draining");

      // The long-lived relay goes on byte for byte, then ends by itself: drained.
      roundTrip(longLived, 256 * 1024);
      longLived.shutdownOutput();
      assertEquals(-1, longLived.read(ByteBuffer.allocate(1)));
      String answer = slow.get(30, TimeUnit.SECONDS);
      assertTrue(answer.startsWith("HTTP/1.1 200"), answer);
      assertTrue(answer.contains("pod=web-1"), answer);

      int cut = drain.get(60, TimeUnit.SECONDS);
      PeerClose.await(leftOpen, Duration.ofSeconds(30), "the cut connection");
      return cut;
    } finally {
      threads.shutdownNow();
    }
  }

  private static double drainCounter(NodeProxy proxy, String outcome) {
    for (String l : proxy.dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith("nodemesh_drain_connections_total{")
          && l.contains("outcome=\"" + outcome + "\"")) {
        return Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    return 0;
  }

  private static int readyStatus(NodeProxy proxy) throws IOException {
    URL url = URI.create("http://127.0.0.1:" + proxy.adminAddress().getPort() + "/ready").toURL();
    HttpURLConnection c = (HttpURLConnection) url.openConnection();
    try {
      return c.getResponseCode();
    } finally {
      c.disconnect();
    }
  }

  private String curl(String... args) {
    try {
      return cluster.node1.curl("client", args);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Sends {@code size} random bytes through the echo server and checks they come back. */
  private void roundTrip(Conn ch, int size) throws IOException {
    byte[] out = new byte[size];
    random.nextBytes(out);
    ByteBuffer w = ByteBuffer.wrap(out);
    ByteBuffer r = ByteBuffer.allocate(size);
    while (w.hasRemaining() || r.hasRemaining()) {
      if (w.hasRemaining()) {
        int end = Math.min(w.limit(), w.position() + 64 * 1024);
        ByteBuffer slice = w.duplicate().limit(end);
        while (slice.hasRemaining()) {
          ch.write(slice);
        }
        w.position(end);
      }
      while (r.position() < w.position()) {
        if (ch.read(r) < 0) {
          throw new IOException("closed after " + r.position() + " of " + size + " bytes");
        }
      }
    }
    assertArrayEquals(out, r.array());
  }

  private static void await(Check check, String what) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!check.ok()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(20);
    }
  }

  @FunctionalInterface
  private interface Check {
    boolean ok() throws Exception;
  }

  private static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata:
        name: web
        namespace: default
      spec:
        parentRefs:
          - group: ""
            kind: Service
            name: web
            port: 80
        rules:
          - backendRefs:
              - {name: web, port: 80}
      """;
}
