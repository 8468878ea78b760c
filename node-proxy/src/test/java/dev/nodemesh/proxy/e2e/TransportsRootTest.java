package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Replies;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** The same intercepted traffic through each transport: epoll, io_uring and NIO. */
@RootTest
class TransportsRootTest {
  @TempDir Path tmp;

  @ParameterizedTest
  @EnumSource(TransportKind.class)
  void interceptedTrafficFlowsOnEveryTransport(TransportKind kind) throws Exception {
    try (TestNode node = TestNode.create(tmp)) {
      node.addStandardMesh();
      node.startProxy(kind);
      node.enrolStandardMesh();
      Set<String> served = new TreeSet<>();
      for (int i = 0; i < 3; i++) {
        served.add(Replies.readLine(node.connect("client", Mesh.VIP, 80)).split(" ")[0]);
      }
      assertEquals(Set.of("echo-1", "echo-2", "echo-3"), served);

      byte[] payload = new byte[4 * 1024 * 1024];
      new java.util.Random(7).nextBytes(payload);
      try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
        Thread writer =
            new Thread(
                () -> {
                  try {
                    ByteBuffer b = ByteBuffer.wrap(payload);
                    while (b.hasRemaining()) {
                      ch.write(b);
                    }
                    ch.shutdownOutput();
                  } catch (java.io.IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                });
        writer.start();
        ByteBuffer got = ByteBuffer.allocate(payload.length + 1);
        while (ch.read(got) >= 0) {
          if (!got.hasRemaining()) {
            break;
          }
        }
        writer.join(30_000);
        got.flip();
        assertEquals(ByteBuffer.wrap(payload), got, kind + ": echoed bytes differ");
      }
      try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
        ch.write(ByteBuffer.wrap("bye".getBytes(StandardCharsets.UTF_8)));
        ch.shutdownOutput();
        assertEquals("bye", Replies.readAll(ch));
      }
    }
  }
}
