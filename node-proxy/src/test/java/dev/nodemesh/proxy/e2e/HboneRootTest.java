package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.BulkEcho;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.testing.UnderlayCapture;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * HBONE end to end: two nodes (namespaces joined by a veth underlay), one node proxy each in this
 * JVM, certificates from a test root. A client on node-1 reaches services whose endpoints are on
 * node-2 through mTLS HTTP/2 CONNECT tunnels on 15008. Both interception modes, one cluster each;
 * the clients are sockets made in their pods ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class HboneRootTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final String TD = "cluster.local";
  private static final String ECHO_VIP = "10.97.0.10";
  private static final String IMPOSTOR_VIP = "10.97.0.11";
  private static final String LOCAL_VIP = "10.97.0.12";
  private static final SpiffeId CLIENT = new SpiffeId(TD, "default", "client");
  private static final SpiffeId ROGUE = new SpiffeId(TD, "default", "rogue");
  private static final SpiffeId IMPOSTOR = new SpiffeId(TD, "default", "impostor");

  /** Also handed to the static set-up, which makes one cluster per mode. */
  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static TwoNodeCluster cluster;
  private static Interception.Setup modes;
  private static final Queue<ConnectionSource> seenByNode2 = new ConcurrentLinkedQueue<>();

  /** One cluster per interception mode, shared by the tests of that mode. */
  @BeforeParameterizedClassInvocation
  static void setUp(Interception mode) throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp.resolve(mode.name()));
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("rogue", 11);
    n1.addPod("local-echo", 12);
    n1.serve("local-echo", 8080, TestServer.Mode.NAME);
    n2.addPod("echo-1", 11);
    n2.addPod("impostor", 12);
    n2.serve("echo-1", 8080, TestServer.Mode.NAME);
    n2.serve("echo-1", 9000, TestServer.Mode.ECHO);
    n2.serve("impostor", 9000, TestServer.Mode.ECHO);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("rogue", n1.ip("rogue"), "rogue", "node-1", "rogue")
            + Mesh.pod("local-echo", n1.ip("local-echo"), "local", "node-1", "local")
            + Mesh.pod("echo-1", n2.ip("echo-1"), "echo", "node-2", "echo")
            + Mesh.pod("impostor", n2.ip("impostor"), "impostor", "node-2", "impostor"));
    cluster.writeConfig(
        "services.yaml",
        Mesh.service("echo", ECHO_VIP, "echo")
            + "---\n"
            + Mesh.service("impostor", IMPOSTOR_VIP, "impostor")
            + "---\n"
            + Mesh.service("local", LOCAL_VIP, "local"));
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    TestIdentities.Ca other = TestIdentities.Ca.create("other-root");
    TestIdentities ids1 = new TestIdentities(root).signWith(ROGUE, other);
    TestIdentities ids2 =
        new TestIdentities(root).presentAs(IMPOSTOR, "spiffe://cluster.local/ns/default/sa/other");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    Authorizer spy =
        (s, d, p, src) -> {
          seenByNode2.add(src);
          return new Decision(true, "default-allow", "allowed");
        };
    cluster.startProxies(modes, ids1, allow, ids2, spy, TunnelSettings.defaults());
    for (String p : List.of("client", "rogue", "local-echo")) {
      assertFalse(n1.enrol(p).getAlreadyEnrolled());
    }
    for (String p : List.of("echo-1", "impostor")) {
      assertFalse(n2.enrol(p).getAlreadyEnrolled());
    }
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
  void crossNodeRequestGoesThroughTheTunnelAndCarriesTheCallersIdentity() throws IOException {
    double before = metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source");
    String[] line = readLine(cluster.node1.podConnect("client", ECHO_VIP, 80)).split(" ");
    assertEquals("echo-1", line[0]);
    // Delivered from inside echo-1's namespace by node-2's proxy, from the client pod's address.
    assertEquals(cluster.node1.ip("client"), line[1]);
    assertTrue(
        metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source") >= before + 1);
    assertTrue(
        seenByNode2.stream()
            .anyMatch(
                s ->
                    CLIENT.equals(s.principal())
                        && s.mutualTls()
                        && s.address().getHostAddress().equals(cluster.node1.ip("client"))),
        seenByNode2.toString());
    // node-2 names the calling workload: its address and its proven identity agree.
    assertTrue(
        cluster
            .node2
            .proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_tcp_connections_opened_total{")
                        && l.contains("reporter=\"destination\"")
                        && l.contains("source_workload=\"client\"")
                        && l.contains("source_namespace=\"default\"")),
        "node-2 reports source_workload=client");
    // Identities on both sides: node-2 labels the caller with what it proved over mTLS, node-1
    // labels the destination with the identity the tunnel required of node-2 for echo-1.
    String client = "source_principal=\"" + CLIENT + "\"";
    String echo = "destination_principal=\"spiffe://cluster.local/ns/default/sa/echo\"";
    assertTrue(
        opened(cluster.node2, "destination", "echo-1").stream()
            .anyMatch(l -> l.contains(client) && l.contains(echo)),
        String.join("\n", opened(cluster.node2, "destination", "echo-1")));
    assertTrue(
        opened(cluster.node1, "source", "echo-1").stream()
            .anyMatch(l -> l.contains(client) && l.contains(echo)),
        String.join("\n", opened(cluster.node1, "source", "echo-1")));
  }

  /** The {@code nodemesh_tcp_connections_opened_total} lines of a reporter and destination. */
  private static List<String> opened(TestNode node, String reporter, String destination) {
    return node.proxy()
        .dataPlane()
        .metrics()
        .scrape()
        .lines()
        .filter(l -> l.startsWith("nodemesh_tcp_connections_opened_total{"))
        .filter(l -> l.contains("reporter=\"" + reporter + "\""))
        .filter(l -> l.contains("destination_workload=\"" + destination + "\""))
        .toList();
  }

  @Test
  void sameNodeDestinationsKeepTheDirectPath() throws IOException {
    double before = metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source");
    String[] line = readLine(cluster.node1.podConnect("client", LOCAL_VIP, 80)).split(" ");
    assertEquals("local-echo", line[0]);
    assertEquals(before, metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source"));
    // No tunnel, still both configured identities (the source's listener proves the caller).
    assertTrue(
        opened(cluster.node1, "source", "local-echo").stream()
            .anyMatch(
                l ->
                    l.contains("source_principal=\"" + CLIENT + "\"")
                        && l.contains(
                            "destination_principal=\"spiffe://cluster.local/ns/default/sa/local\"")),
        String.join("\n", opened(cluster.node1, "source", "local-echo")));
  }

  @Test
  void bulkTransferArrivesByteIdentical() throws Exception {
    long size = 64L * 1024 * 1024;
    try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
      BulkEcho echo = BulkEcho.through(ch, size, 7);
      assertEquals(size, echo.received());
      assertArrayEquals(echo.sentDigest(), echo.receivedDigest());
    }
  }

  @Test
  void theUnderlayCarriesOnlyTls() throws Exception {
    Path pcap = tmp.resolve("underlay.pcap");
    Path log = tmp.resolve("tcpdump.log");
    UnderlayCapture capture = UnderlayCapture.start(cluster, pcap, log);
    String marker = "NODEMESH-PLAINTEXT-MARKER-" + Long.toHexString(new Random().nextLong());
    try {
      byte[] payload = (marker + "\n").repeat(200).getBytes(StandardCharsets.UTF_8);
      try (Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000)) {
        ByteBuffer out = ByteBuffer.wrap(payload);
        while (out.hasRemaining()) {
          ch.write(out);
        }
        ch.shutdownOutput();
        assertArrayEquals(payload, readAll(ch));
      }
      capture.awaitMoreThan(2L * payload.length, "the transfer in the capture");
    } finally {
      capture.close();
    }
    byte[] captured = capture.bytes();
    assertTrue(captured.length > 8_000, "capture holds the transfer: " + captured.length);
    assertFalse(
        UnderlayCapture.contains(captured, marker.getBytes(StandardCharsets.UTF_8)),
        "the marker crossed the underlay in plaintext");
    // TLS 1.3 application data records: content type 23, legacy version 3.3.
    assertTrue(
        UnderlayCapture.contains(captured, new byte[] {0x17, 0x03, 0x03}),
        "no TLS records captured");
  }

  @Test
  void aThousandConcurrentStreamsOverPooledTunnels() throws Exception {
    int count = 1000;
    int size = 8 * 1024;
    List<Conn> channels = new ArrayList<>(count);
    List<byte[]> payloads = new ArrayList<>(count);
    Random r = new Random(11);
    try {
      for (int i = 0; i < count; i++) {
        Conn ch = cluster.node1.podConnect("client", ECHO_VIP, 9000);
        channels.add(ch);
        byte[] p = new byte[size];
        r.nextBytes(p);
        payloads.add(p);
        ByteBuffer b = ByteBuffer.wrap(p);
        while (b.hasRemaining()) {
          ch.write(b);
        }
      }
      // Every stream is open at once before any of them ends.
      try {
        Await.until(
            WAIT,
            count + " tunnelled connections open on node-2",
            () -> metric(cluster.node2, "nodemesh_tcp_connections_open", "destination") >= count);
      } catch (AssertionError e) {
        throw new AssertionError(e.getMessage() + ": " + streamCounts(), e);
      }
      double pooled = metric(cluster.node1, "nodemesh_tunnel_connections_open", "source");
      assertTrue(pooled >= 10 && pooled <= 40, "pooled connections: " + pooled);
      for (Conn ch : channels) {
        ch.shutdownOutput();
      }
      for (int i = 0; i < count; i++) {
        assertArrayEquals(payloads.get(i), readAll(channels.get(i)), "stream " + i);
      }
    } finally {
      for (Conn ch : channels) {
        ch.close();
      }
    }
  }

  @Test
  void aClientCertificateFromAnotherRootIsRejected() throws Exception {
    double before =
        metric(cluster.node2, "nodemesh_tunnel_handshake_failures_total", "destination");
    assertRefused("rogue", ECHO_VIP);
    Await.until(
        WAIT,
        "node-2 counted the failed handshake",
        () ->
            metric(cluster.node2, "nodemesh_tunnel_handshake_failures_total", "destination")
                > before);
    assertTrue(seenByNode2.stream().noneMatch(s -> ROGUE.equals(s.principal())));
  }

  @Test
  void aServerWithTheWrongIdentityIsRejectedByTheClient() throws Exception {
    double before = metric(cluster.node1, "nodemesh_tunnel_handshake_failures_total", "source");
    assertRefused("client", IMPOSTOR_VIP);
    assertTrue(
        metric(cluster.node1, "nodemesh_tunnel_handshake_failures_total", "source") > before);
  }

  /** The connection is accepted locally (the in-pod listener), then reset with nothing relayed. */
  private static void assertRefused(String pod, String vip) throws IOException {
    Conn conn;
    try {
      conn = cluster.node1.podConnect(pod, vip, 9000);
    } catch (java.net.SocketException e) {
      // eBPF mode: the listener is on loopback, so a reset can arrive before connect() returns.
      assertTrue(e.getMessage() != null && e.getMessage().contains("reset"), e.toString());
      return;
    }
    try (Conn ch = conn) {
      ch.write(ByteBuffer.wrap("hello\n".getBytes(StandardCharsets.UTF_8)));
      ByteBuffer buf = ByteBuffer.allocate(64);
      int n;
      try {
        n = ch.read(buf);
      } catch (IOException reset) {
        return;
      }
      assertEquals(-1, n, "no byte may come back");
    }
  }

  /** Where the streams of the thousand got to, for the failure message. */
  private static String streamCounts() {
    StringBuilder b = new StringBuilder();
    try {
      b.append("node-2 open ")
          .append(metric(cluster.node2, "nodemesh_tcp_connections_open", "destination"))
          .append(", node-1 open ")
          .append(metric(cluster.node1, "nodemesh_tcp_connections_open", "source"))
          .append(", node-1 streams opened ")
          .append(metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source"))
          .append(", node-1 tunnel connections ")
          .append(metric(cluster.node1, "nodemesh_tunnel_connections_open", "source"))
          .append(", node-2 HBONE connections ")
          .append(metric(cluster.node2, "nodemesh_tunnel_connections_open", "destination"))
          .append(", node-2 streams opened ")
          .append(metric(cluster.node2, "nodemesh_tunnel_streams_opened_total", "destination"))
          .append(", node-2 streams refused ")
          .append(metric(cluster.node2, "nodemesh_tunnel_streams_refused_total", "destination"))
          .append(", handshake failures ")
          .append(metric(cluster.node1, "nodemesh_tunnel_handshake_failures_total", "source"))
          .append('/')
          .append(metric(cluster.node2, "nodemesh_tunnel_handshake_failures_total", "destination"));
      try (var fds = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
        b.append(", fds in this JVM ").append(fds.count());
      }
      b.append(", threads ").append(Thread.activeCount());
    } catch (Exception e) {
      b.append(" (then ").append(e).append(')');
    }
    return b.toString();
  }

  private static double metric(TestNode node, String name, String reporter) {
    double sum = 0;
    for (String l : node.proxy().dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith(name + "{") && l.contains("reporter=\"" + reporter + "\"")) {
        sum += Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  private static byte[] readAll(Conn ch) throws IOException {
    java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream();
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    while (ch.read(buf) >= 0) {
      buf.flip();
      out.write(buf.array(), 0, buf.limit());
      buf.clear();
    }
    return out.toByteArray();
  }

  private static String readLine(Conn ch) throws IOException {
    try (ch) {
      return new String(readAll(ch), StandardCharsets.UTF_8).trim();
    }
  }
}
