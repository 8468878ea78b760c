package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.testing.AccessLogLines;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The access log end to end, in both interception modes: real pods in namespaces, the proxy writing
 * its log to a file; a relayed connection and a refused one each produce one line with the right
 * fields.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class AccessLogRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;

  @TempDir Path tmp;
  private TestNode node;
  private Path logFile;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addStandardMesh();
    logFile = tmp.resolve("access.log");
    modes = mode.setUp();
    node.startProxy(
        TransportKind.EPOLL, modes.nextNode(), AccessLogSettings.parse(logFile.toString(), 1.0));
    node.enrolStandardMesh();
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void aRelayedConnectionIsOneLineWithItsBytesAndARefusedOneIsFlaggedNoRoute() throws Exception {
    byte[] payload = new byte[100_000];
    new Random(7).nextBytes(payload);
    long echoed = 0;
    try (Conn ch = node.podConnect("client", Mesh.VIP, 9000)) {
      ByteBuffer out = ByteBuffer.wrap(payload);
      while (out.hasRemaining()) {
        ch.write(out);
      }
      ch.shutdownOutput();
      ByteBuffer in = ByteBuffer.allocate(64 * 1024);
      int n;
      while ((n = ch.read(in)) >= 0) {
        echoed += n;
        in.clear();
      }
    }
    assertEquals(payload.length, echoed);
    // The service has no port 81: the proxy refuses it.
    assertThrows(IOException.class, () -> drain(node.podConnect("client", Mesh.VIP, 81)));

    List<JsonNode> lines = AccessLogLines.awaitExactly(logFile, false, 2);
    JsonNode relayed =
        lines.stream().filter(l -> l.get("response_flags").asText().equals("-")).findFirst().get();
    assertEquals("source", relayed.get("reporter").asText());
    assertEquals("test-node", relayed.get("node").asText());
    assertEquals("client", relayed.get("source_workload").asText());
    assertEquals("default", relayed.get("source_namespace").asText());
    assertEquals("echo.default", relayed.get("destination_service").asText());
    String dst = relayed.get("destination_workload").asText();
    assertTrue(dst.startsWith("echo-"), relayed.toString());
    assertEquals(node.ip(dst) + ":9000", relayed.get("upstream_address").asText());
    assertEquals(Mesh.VIP + ":9000", relayed.get("original_destination").asText());
    assertEquals(payload.length, relayed.get("bytes_sent").asLong(), relayed.toString());
    assertEquals(payload.length, relayed.get("bytes_received").asLong(), relayed.toString());
    assertTrue(relayed.get("upstream_connect_us").asLong() >= 0, relayed.toString());
    assertTrue(
        relayed.get("duration_us").asLong() >= relayed.get("upstream_connect_us").asLong(),
        relayed.toString());

    JsonNode refused =
        lines.stream().filter(l -> l.get("response_flags").asText().equals("NR")).findFirst().get();
    assertEquals("echo.default", refused.get("destination_service").asText());
    assertEquals(Mesh.VIP + ":81", refused.get("original_destination").asText());
    assertEquals(0, refused.get("bytes_sent").asLong());
    assertEquals(
        2.0,
        node.proxy()
            .dataPlane()
            .metrics()
            .registry()
            .get("nodemesh.access.log.written")
            .counter()
            .count());
  }

  private static void drain(Conn ch) throws IOException {
    try (ch) {
      ByteBuffer b = ByteBuffer.allocate(1024);
      while (ch.read(b) >= 0) {
        b.clear();
      }
    }
  }
}
