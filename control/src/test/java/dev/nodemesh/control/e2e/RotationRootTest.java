package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.identity.HeldCertificate;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Certificate rotation end to end, with nothing faked: a control plane with its CA (a 4 s
 * certificate lifetime) serving xDS and certificates over TLS, two nodes (namespaces joined by an
 * underlay, one node proxy each in this JVM) whose CertificateManagers get their pods' certificates
 * with their bootstrap tokens, and HBONE tunnels built from them. One connection from a client pod
 * on node-1 to an echo pod on node-2 keeps echoing through several rotations on both nodes and
 * outlives the certificates it was opened with; connections opened after those expired still work,
 * and go over a new tunnel rather than the one authenticated with the expired certificates. Both
 * interception modes; the client's connections are sockets made in its pod ({@link
 * TestNode#podConnect}). Lives in the proxy's e2e package (in this module) to reuse its two-node
 * harness.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class RotationRootTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final String TD = "cluster.local";
  private static final Duration TTL = Duration.ofSeconds(4);
  private static final String ECHO_VIP = "10.97.0.10";
  private static final int ROTATIONS = 4;

  @Parameter Interception mode;
  @TempDir Path tmp;

  @Test
  void aLongStreamSurvivesSeveralRotationsAndNewConnectionsUseTheRotatedCertificates()
      throws Exception {
    Path mesh = Files.createDirectories(tmp.resolve("mesh"));
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(tmp.resolve("ca")), CaSettings.of(TD, TTL), Clock.systemUTC());
    Path tokens = tmp.resolve("tokens");
    BootstrapTokens.generate(tokens, List.of("node-1", "node-2"));
    try (Interception.Setup modes = mode.setUp();
        TwoNodeCluster cluster = TwoNodeCluster.create(tmp.resolve("nodes"))) {
      TestNode n1 = cluster.node1;
      TestNode n2 = cluster.node2;
      n1.addPod("client", 10);
      n2.addPod("echo-1", 11);
      n2.serve("echo-1", 9000, TestServer.Mode.ECHO);
      write(
          mesh,
          "pods.yaml",
          Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
              + Mesh.pod("echo-1", n2.ip("echo-1"), "echo", "node-2", "echo"));
      write(mesh, "services.yaml", Mesh.service("echo", ECHO_VIP, "echo"));
      try (ControlPlane cp =
          ControlPlane.start(
              new LocalSource(mesh, 50),
              new InetSocketAddress("127.0.0.1", 0),
              new InetSocketAddress("127.0.0.1", 0),
              Duration.ofMillis(20),
              new CaOptions(ca, BootstrapTokens.load(tokens), List.of("127.0.0.1")))) {
        String xds = "127.0.0.1:" + cp.address().getPort();
        try {
          run(cp, n1, n2, xds, tokens, modes);
        } finally {
          // Before the control plane, which they would otherwise keep reconnecting to.
          n1.stopProxy();
          n2.stopProxy();
        }
      }
    }
  }

  private static void run(
      ControlPlane cp, TestNode n1, TestNode n2, String xds, Path tokens, Interception.Setup modes)
      throws Exception {
    NodeProxy p1 = n1.startProxy(config(n1, xds, tokens, modes.nextNode()));
    NodeProxy p2 = n2.startProxy(config(n2, xds, tokens, modes.nextNode()));
    CertificateManager certs1 = p1.identity();
    CertificateManager certs2 = p2.identity();
    assertNotNull(certs1);
    assertNotNull(certs2);
    // Node-1 sees both pods (the echo service's endpoint), node-2 at least its own.
    Await.until(WAIT, "both nodes' configs", () -> workloads(p1) == 2 && workloads(p2) >= 1);
    Await.until(
        WAIT,
        "both pods' certificates",
        () -> certs1.held().size() == 1 && certs2.held().size() == 1);
    assertEquals(new SpiffeId(TD, "default", "client"), held(certs1).id());
    assertEquals(new SpiffeId(TD, "default", "echo"), held(certs2).id());
    assertFalse(n1.enrol("client").getAlreadyEnrolled());
    assertFalse(n2.enrol("echo-1").getAlreadyEnrolled());

    Random random = new Random(4);
    try (Conn stream = n1.podConnect("client", ECHO_VIP, 9000)) {
      // The certificates the stream's tunnel was authenticated with: held before it opened.
      echo(stream, random, 1024);
      HeldCertificate first1 = held(certs1);
      HeldCertificate first2 = held(certs2);
      Instant firstExpiry = min(first1.notAfter(), first2.notAfter());
      Instant end = max(first1.notAfter(), first2.notAfter()).plus(TTL.multipliedBy(2));
      Set<String> serials1 = new HashSet<>(Set.of(first1.serial()));
      Set<String> serials2 = new HashSet<>(Set.of(first2.serial()));
      int fresh = 0;
      long echoed = 0;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
      // Three lifetimes or more: until two lifetimes past the later first certificate's expiry.
      while (Instant.now().isBefore(end) || fresh < 2) {
        assertTrue(System.nanoTime() < deadline, "timed out; fresh connections: " + fresh);
        echoed += echo(stream, random, 16 * 1024);
        // A certificate is replaced, never dropped, so one is always held.
        boolean rotated = serials1.add(held(certs1).serial());
        serials2.add(held(certs2).serial());
        if (rotated && Instant.now().isAfter(firstExpiry)) {
          fresh++;
          aNewConnectionUsesANewTunnel(n1, random);
        }
        Thread.sleep(50);
      }
      // The stream really outlived the certificates it started with, and still echoes.
      assertTrue(Instant.now().isAfter(first1.notAfter()), "client's first " + first1);
      assertTrue(Instant.now().isAfter(first2.notAfter()), "echo's first " + first2);
      echoed += echo(stream, random, 64 * 1024);
      assertTrue(echoed > 100 * 1024, "echoed " + echoed);
      stream.shutdownOutput();
      assertEquals(-1, stream.read(ByteBuffer.allocate(1)));

      assertTrue(serials1.size() > ROTATIONS, "node-1 serials " + serials1);
      assertTrue(serials2.size() > ROTATIONS, "node-2 serials " + serials2);
      assertTrue(rotations(p1) >= ROTATIONS, "node-1 rotations " + rotations(p1));
      assertTrue(rotations(p2) >= ROTATIONS, "node-2 rotations " + rotations(p2));
      assertNotEquals(first1.serial(), held(certs1).serial());
      assertNotEquals(first2.serial(), held(certs2).serial());
      assertTrue(cp.caMetrics().issuedCount() >= 2L * (ROTATIONS + 1));
    }
    assertEquals(
        0.0,
        metric(n2, "nodemesh_tunnel_handshake_failures_total", "destination"),
        "no handshake failed on node-2");
    assertEquals(
        0.0,
        metric(n1, "nodemesh_tunnel_handshake_failures_total", "source"),
        "no handshake failed on node-1");
  }

  /**
   * A connection opened after the first certificates expired echoes, and while it is open node-1
   * holds two tunnel connections: the stream's old one, which takes no new stream, and a new one
   * made with the current certificates. (Node-1 runs one event loop, so one pool.)
   */
  private static void aNewConnectionUsesANewTunnel(TestNode n1, Random random) throws Exception {
    try (Conn ch = n1.podConnect("client", ECHO_VIP, 9000)) {
      echo(ch, random, 4096);
      double tunnels = metric(n1, "nodemesh_tunnel_connections_open", "source");
      assertTrue(tunnels >= 2, "node-1 tunnel connections while both are open: " + tunnels);
      ch.shutdownOutput();
      assertEquals(-1, ch.read(ByteBuffer.allocate(1)));
    }
  }

  /**
   * One worker loop, so a node has one tunnel pool and the connection count says which is used.
   * Also used by {@link SecurityDashboardRootTest}: xDS and certificates from {@code xds}, the
   * node's bootstrap token from beside {@code tokens}, pod traffic captured by {@code
   * interception}.
   */
  static NodeProxyConfig config(
      TestNode node, String xds, Path tokens, InterceptionMode interception) {
    return NodeProxyConfig.builder()
        .transport(TransportKind.EPOLL)
        .agentSocket(node.agentSocket())
        .adminAddress(new InetSocketAddress("127.0.0.1", 0))
        .nodeName(node.nodeName())
        .workerThreads(1)
        .interception(interception)
        .xdsTarget(xds)
        .identity(
            tokens.resolveSibling("ca").resolve("ca.crt"),
            new IdentityConfig(
                null, tokens.resolveSibling(node.nodeName() + ".token"), TD, Duration.ZERO))
        .build();
  }

  /** Writes {@code size} random bytes and reads the same bytes back; returns {@code size}. */
  private static int echo(Conn ch, Random random, int size) throws IOException {
    byte[] sent = new byte[size];
    random.nextBytes(sent);
    ByteBuffer out = ByteBuffer.wrap(sent);
    while (out.hasRemaining()) {
      ch.write(out);
    }
    ByteBuffer in = ByteBuffer.allocate(size);
    while (in.hasRemaining()) {
      if (ch.read(in) < 0) {
        throw new IOException("closed after " + in.position() + " of " + size + " bytes");
      }
    }
    assertArrayEquals(sent, in.array());
    return size;
  }

  /** The one certificate {@code certs} holds (each node has one pod, so one identity). */
  private static HeldCertificate held(CertificateManager certs) {
    List<HeldCertificate> held = certs.held();
    if (held.size() != 1) {
      throw new AssertionError("expected one certificate, held " + held);
    }
    return held.get(0);
  }

  private static int workloads(NodeProxy p) {
    return p.dataPlane().snapshots().current().workloads().size();
  }

  private static double rotations(NodeProxy p) {
    return p.dataPlane()
        .metrics()
        .registry()
        .get("nodemesh.certificate.rotations")
        .counter()
        .count();
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

  private static Instant min(Instant a, Instant b) {
    return a.isBefore(b) ? a : b;
  }

  private static Instant max(Instant a, Instant b) {
    return a.isAfter(b) ? a : b;
  }

  static void write(Path dir, String file, String yaml) throws IOException {
    Path tmp = dir.resolveSibling(file + ".tmp");
    Files.writeString(tmp, yaml);
    Files.move(tmp, dir.resolve(file), StandardCopyOption.ATOMIC_MOVE);
  }
}
