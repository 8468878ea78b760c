package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.io.InputStream;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The L4 idle timeout per Service: two Services over the same echo pods, "quick" with a
 * TrafficPolicy {@code tcpIdleTimeout: 1s}, "echo" without one (the proxy's 1 h default). A relay
 * to quick that goes quiet is closed by the proxy; a relay to echo, as quiet for as long, still
 * echoes afterwards. Events are asserted (closed, still echoing), not durations.
 */
@RootTest
class TcpIdleTimeoutRootTest {
  private static final String QUICK_VIP = "10.97.0.20";

  @TempDir Path tmp;

  @Test
  void aServiceWithAShortIdleTimeoutClosesItsIdleRelayWhileAnotherServicesStaysOpen()
      throws Exception {
    try (TestNode node = TestNode.create(tmp)) {
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
      node.startProxy(TransportKind.EPOLL);
      node.enrolStandardMesh();

      // Port 9000 is plain TCP: the L4 relay, echoing what the client sends.
      try (SocketChannel kept = node.connect("client", Mesh.VIP, 9000);
          SocketChannel cut = node.connect("client", QUICK_VIP, 9000)) {
        assertEquals("a", echo(kept, "a"), "the relay to echo works");
        assertEquals("b", echo(cut, "b"), "the relay to quick works");

        // Quiet now: the proxy closes the relay to quick after 1 s (EOF or reset; bounded wait).
        cut.socket().setSoTimeout(30_000);
        InputStream in = cut.socket().getInputStream();
        int got;
        try {
          got = in.read();
        } catch (SocketTimeoutException e) {
          throw new AssertionError("the idle relay to quick was not closed in 30 s", e);
        } catch (IOException reset) {
          got = -1;
        }
        assertEquals(-1, got, "the idle relay to quick was closed");

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
  }

  /** Writes {@code text} and reads the same number of bytes back. */
  private static String echo(SocketChannel ch, String text) throws IOException {
    ch.write(ByteBuffer.wrap(text.getBytes(java.nio.charset.StandardCharsets.US_ASCII)));
    ByteBuffer back = ByteBuffer.allocate(text.length());
    while (back.hasRemaining()) {
      if (ch.read(back) < 0) {
        throw new IOException("closed after " + back.position() + " bytes");
      }
    }
    return new String(back.array(), java.nio.charset.StandardCharsets.US_ASCII);
  }
}
