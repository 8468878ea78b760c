package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.RawH2Client;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.VictimLoad;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * HTTP/2 floods on the L7 path, through a real node proxy in network namespaces (issue 16): an
 * attacker pod opens an h2c connection to a Service with an HTTPRoute and sends thousands of
 * HEADERS each followed at once by RST_STREAM (rapid reset, CVE-2023-44487), or a header block
 * continued by empty CONTINUATION frames that never ends. The proxy answers that connection with
 * GOAWAY and closes it; meanwhile a victim pod's fixed-rate requests all succeed (errors asserted,
 * latency only printed), and another h2c connection to the same Service, open before the flood, is
 * answered before and after it without a GOAWAY. The flood limits themselves (how many resets per
 * window, how many small CONTINUATIONs) are {@code l7.HttpProxy}'s and tested frame by frame in
 * {@code H2DownstreamLimitsTest}; HBONE's, the same codec limits, in {@code HboneServerLimitsTest}.
 * Both interception modes: every client is a socket of its pod's app ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class H2FloodRootTest {
  static final String VIP = "10.97.0.33";
  static final int RESETS = 10_000;
  static final long ENHANCE_YOUR_CALM = 0xb;

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;
  private final List<AutoCloseable> open = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("victim", 10);
    node.addPod("web-1", 11);
    node.addPod("attacker", 12);
    node.serveHttp("web-1", 8080);
    node.writeConfig(
        "mesh.yaml",
        Mesh.httpPod("victim", 10, "victim")
            + Mesh.httpPod("attacker", 12, "attacker")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpService("web", VIP, "web")
            + Mesh.httpRoute("web"));
    modes = mode.setUp();
    node.startProxy(node.proxyConfig().interception(modes.nextNode()).build());
    for (String pod : List.of("victim", "web-1", "attacker")) {
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

  /** Another h2c connection to the Service, answered on stream 1 before anything happens. */
  private RawH2Client bystander() throws Exception {
    RawH2Client c = keep(RawH2Client.open(node, "victim", VIP, 80));
    c.get(1, "web", "/before");
    assertEquals("200", c.status(1, Duration.ofSeconds(10)), "the bystander's first request");
    return c;
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

  /** After a flood: the bystander still answered, no GOAWAY for it, the victim never failed. */
  private void othersUntouched(RawH2Client bystander, VictimLoad victim, String what)
      throws Exception {
    Thread.sleep(1_000); // the victim keeps calling after the flood, too
    bystander.get(3, "web", "/after");
    assertEquals("200", bystander.status(3, Duration.ofSeconds(10)), "bystander after " + what);
    assertEquals(-1, bystander.goAwayError(), "no GOAWAY for the bystander");
    assertFalse(bystander.isClosed(), "the bystander's connection is open");
    VictimLoad.Result r = victim.stop();
    System.out.printf("h2 flood (%s): victim %s%n", what, r);
    assertEquals(List.of(), r.errors(), "every victim request succeeded: " + r);
    assertTrue(r.requests() >= 20, "the victim kept calling: " + r);
  }

  @Test
  void aRapidResetFloodGetsGoAwayWhileOtherConnectionsAndTheVictimAreServed() throws Exception {
    RawH2Client bystander = bystander();
    VictimLoad victim = victim();
    Thread.sleep(500);

    RawH2Client attacker = keep(RawH2Client.open(node, "attacker", VIP, 80));
    byte[] flood = RawH2Client.rapidReset(RawH2Client.get("web", "/flood"), RESETS);
    long sent = attacker.writeUntilClosed(flood);
    assertTrue(attacker.closedWithin(Duration.ofSeconds(10)), "the proxy closed the connection");
    System.out.printf(
        "h2 flood (rapid reset): %d of %d bytes (%d HEADERS+RST_STREAM pairs) written before the"
            + " close; GOAWAY %d \"%s\"%n",
        sent, flood.length, RESETS, attacker.goAwayError(), attacker.goAwayDebug());
    assertEquals(ENHANCE_YOUR_CALM, attacker.goAwayError(), "GOAWAY(ENHANCE_YOUR_CALM)");
    assertTrue(attacker.goAwayDebug().contains("RST frames"), attacker.goAwayDebug());

    othersUntouched(bystander, victim, "rapid reset");
  }

  @Test
  void aContinuationFloodGetsGoAwayWhileOtherConnectionsAndTheVictimAreServed() throws Exception {
    RawH2Client bystander = bystander();
    VictimLoad victim = victim();
    Thread.sleep(500);

    RawH2Client attacker = keep(RawH2Client.open(node, "attacker", VIP, 80));
    byte[] flood = RawH2Client.continuationFlood(RawH2Client.get("web", "/flood"), RESETS);
    long sent = attacker.writeUntilClosed(flood);
    assertTrue(attacker.closedWithin(Duration.ofSeconds(10)), "the proxy closed the connection");
    System.out.printf(
        "h2 flood (CONTINUATION): %d of %d bytes written before the close; GOAWAY %d \"%s\"%n",
        sent, flood.length, attacker.goAwayError(), attacker.goAwayDebug());
    assertTrue(attacker.goAwayError() > 0, "GOAWAY with an error: " + attacker.goAwayError());

    othersUntouched(bystander, victim, "CONTINUATION");
  }
}
