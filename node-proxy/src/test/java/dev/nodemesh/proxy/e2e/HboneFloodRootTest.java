package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.identity.WorkloadCertificate;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.RawH2Client;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.VictimLoad;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * HTTP/2 floods on HBONE, through a real node proxy: a peer with a valid workload certificate from
 * the mesh's root (a compromised workload on another node, played by a pod this node does not
 * capture) opens mTLS HTTP/2 connections to an enrolled pod's tunnel port 15008 and sends a
 * rapid-reset flood (CONNECT HEADERS each reset at once) or a CONTINUATION flood. The proxy answers
 * that connection with GOAWAY and closes it; another tunnel connection from the same peer still
 * answers PING without a GOAWAY, and a victim pod's fixed-rate requests on the node all succeed.
 * The limits themselves are {@code tunnel.HboneServer}'s, frame by frame in {@code
 * HboneServerLimitsTest}; the h2c downstream's floods are {@link H2FloodRootTest}'s.
 *
 * <p>Both interception modes. The peer's tunnels are sockets of this JVM in its namespace in both:
 * the peer pod is not enrolled, so neither mode captures it, and what receives them (15008 is never
 * redirected) is the same listener. What the mode changes is the victim's path, whose requests are
 * made by the victim pod's app ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class HboneFloodRootTest {
  static final String VIP = "10.97.0.34";
  static final int FLOOD = 10_000;
  static final long ENHANCE_YOUR_CALM = 0xb;
  static final SpiffeId PEER = new SpiffeId("cluster.local", "default", "peer");

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;
  private TestIdentities identities;
  private final List<AutoCloseable> open = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("victim", 10);
    node.addPod("web-1", 11);
    node.addPod("peer", 13); // never enrolled: its connections are not captured
    node.serveHttp("web-1", 8080);
    node.writeConfig(
        "mesh.yaml",
        Mesh.httpPod("victim", 10, "victim")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpService("web", VIP, "web")
            + Mesh.httpRoute("web"));
    identities = new TestIdentities(TestIdentities.Ca.create("test-root"));
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode(), identities, allow);
    for (String pod : List.of("victim", "web-1")) {
      node.enrol(pod);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    List<AutoCloseable> all = new ArrayList<>(open);
    all.add(node);
    all.add(modes);
    Teardown.close(all.toArray(AutoCloseable[]::new));
  }

  private <T extends AutoCloseable> T keep(T c) {
    open.add(c);
    return c;
  }

  /** An mTLS HTTP/2 connection from the peer pod to web-1's tunnel port, as PEER. */
  private RawH2Client tunnel() throws Exception {
    WorkloadCertificate cert = identities.certificate(PEER).toCompletableFuture().join();
    KeyStore keys = KeyStore.getInstance("PKCS12");
    keys.load(null, null);
    char[] password = "test".toCharArray();
    keys.setKeyEntry("peer", cert.key(), password, cert.chain().toArray(new Certificate[0]));
    KeyManagerFactory km = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    km.init(keys, password);
    KeyStore anchors = KeyStore.getInstance("PKCS12");
    anchors.load(null, null);
    for (int i = 0; i < identities.trustAnchors().size(); i++) {
      anchors.setCertificateEntry("root-" + i, identities.trustAnchors().get(i));
    }
    TrustManagerFactory tm =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tm.init(anchors);
    SSLContext tls = SSLContext.getInstance("TLSv1.3");
    tls.init(km.getKeyManagers(), tm.getTrustManagers(), null);

    String ip = node.ip("web-1");
    SocketChannel plain;
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("peer").path());
        NetworkNamespace.Scope in = ns.enter()) {
      plain = SocketChannel.open();
    }
    try {
      plain.socket().connect(new InetSocketAddress(ip, 15008), 10_000);
      SSLSocket s =
          (SSLSocket) tls.getSocketFactory().createSocket(plain.socket(), ip, 15008, true);
      SSLParameters p = s.getSSLParameters();
      p.setProtocols(new String[] {"TLSv1.3"});
      p.setApplicationProtocols(new String[] {"h2"});
      s.setSSLParameters(p);
      s.setSoTimeout(10_000);
      s.startHandshake();
      assertEquals("h2", s.getApplicationProtocol(), "ALPN");
      return keep(RawH2Client.over(s));
    } catch (IOException | RuntimeException e) {
      plain.close();
      throw e;
    }
  }

  private VictimLoad victim() {
    return keep(
        VictimLoad.start(
            node,
            "victim",
            Duration.ofMillis(50),
            List.of(
                new InetSocketAddress(VIP, 80),
                new InetSocketAddress(TestNode.SUBNET + "11", 8080)),
            "web"));
  }

  /** The flood's connection gets GOAWAY and a close; the other tunnel and the victim do not. */
  private RawH2Client flood(byte[] flood, String what) throws Exception {
    RawH2Client bystander = tunnel();
    bystander.ping();
    assertTrue(bystander.awaitPingAcks(1, Duration.ofSeconds(10)), "the bystander's PING");
    VictimLoad victim = victim();
    Thread.sleep(500);

    RawH2Client attacker = tunnel();
    long sent = attacker.writeUntilClosed(flood);
    assertTrue(attacker.closedWithin(Duration.ofSeconds(10)), "the proxy closed the connection");
    System.out.printf(
        "hbone flood (%s): %d of %d bytes written before the close; GOAWAY %d \"%s\"%n",
        what, sent, flood.length, attacker.goAwayError(), attacker.goAwayDebug());

    Thread.sleep(1_000);
    bystander.ping();
    assertTrue(bystander.awaitPingAcks(2, Duration.ofSeconds(10)), "the bystander after " + what);
    assertEquals(-1, bystander.goAwayError(), "no GOAWAY for the bystander");
    assertFalse(bystander.isClosed(), "the bystander's tunnel is open");
    VictimLoad.Result r = victim.stop();
    System.out.printf("hbone flood (%s): victim %s%n", what, r);
    assertEquals(List.of(), r.errors(), "every victim request succeeded: " + r);
    assertTrue(r.requests() >= 20, "the victim kept calling: " + r);
    return attacker;
  }

  @Test
  void aRapidResetFloodOnATunnelGetsGoAwayAndLeavesTheOthersAlone() throws Exception {
    byte[] block = RawH2Client.connect(node.ip("web-1") + ":8080");
    RawH2Client attacker = flood(RawH2Client.rapidReset(block, FLOOD), "rapid reset");
    assertEquals(ENHANCE_YOUR_CALM, attacker.goAwayError(), "GOAWAY(ENHANCE_YOUR_CALM)");
  }

  @Test
  void aContinuationFloodOnATunnelGetsGoAwayAndLeavesTheOthersAlone() throws Exception {
    byte[] block = RawH2Client.connect(node.ip("web-1") + ":8080");
    RawH2Client attacker = flood(RawH2Client.continuationFlood(block, FLOOD), "CONTINUATION");
    assertTrue(attacker.goAwayError() > 0, "GOAWAY with an error: " + attacker.goAwayError());
  }
}
