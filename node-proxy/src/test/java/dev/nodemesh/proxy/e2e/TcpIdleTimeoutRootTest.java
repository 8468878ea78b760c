package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PeerClose;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The L4 idle timeout per Service: two Services over the same echo pods, "quick" with a
 * TrafficPolicy {@code tcpIdleTimeout: 1s}, "echo" without one (the proxy's 1 h default). A relay
 * to quick that goes quiet is closed by the proxy; a relay to echo, as quiet for as long, still
 * echoes afterwards. Events are asserted (closed, still echoing), not durations. Both interception
 * modes: the clients are sockets made in the client pod ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TcpIdleTimeoutRootTest {
  private static final String QUICK_VIP = "10.97.0.20";

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void aServiceWithAShortIdleTimeoutClosesItsIdleRelayWhileAnotherServicesStaysOpen()
      throws Exception {
    node = TestNode.create(tmp);
    node.addStandardMesh();
    node.writeConfig(
        "services.yaml",
        Mesh.service("echo", Mesh.VIP, "echo")
            + "---\n"
            + Mesh.service("quick", QUICK_VIP, "echo"));
    node.writeConfig(
        "policy.yaml",
        """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: quick, namespace: default}
        spec:
          targetRef: {kind: Service, name: quick}
          tcpIdleTimeout: 1s
        """);
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    node.enrolStandardMesh();

    // Port 9000 is plain TCP: the L4 relay, echoing what the client sends.
    try (Conn kept = node.podConnect("client", Mesh.VIP, 9000);
        Conn cut = node.podConnect("client", QUICK_VIP, 9000)) {
      assertEquals("a", echo(kept, "a"), "the relay to echo works");
      assertEquals("b", echo(cut, "b"), "the relay to quick works");

      // Quiet now: the proxy closes the relay to quick after 1 s (EOF or reset; bounded wait).
      PeerClose.await(cut, Duration.ofSeconds(30), "the idle relay to quick");

      // The relay to echo was as quiet for at least as long, and still relays.
      assertEquals("c", echo(kept, "c"), "the relay to echo was cut too");
    }
    // One relay timed out, and it was quick's (echo's still relays).
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_connection_timeouts_total{")
                        && l.contains("reason=\"tcp_idle\"")
                        && l.endsWith(" 1.0")),
        metrics);
  }

  /** Writes {@code text} and reads the same number of bytes back. */
  private static String echo(Conn ch, String text) throws IOException {
    ch.write(ByteBuffer.wrap(text.getBytes(StandardCharsets.US_ASCII)));
    ByteBuffer back = ByteBuffer.allocate(text.length());
    while (back.hasRemaining()) {
      if (ch.read(back) < 0) {
        throw new IOException("closed after " + back.position() + " bytes");
      }
    }
    return new String(back.array(), StandardCharsets.US_ASCII);
  }
}
