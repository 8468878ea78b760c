package dev.nodemesh.proxy.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.cni.AgentWire;
import dev.nodemesh.model.cni.AgentWire.Reply;
import java.io.EOFException;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CNI plugin's framed socket, served by the node agent's own service: requests are checked as
 * over gRPC (the same messages and status names), bad frames get a reason or a closed connection.
 */
class FramedAgentServerTest {
  @TempDir Path dir;
  private ExecutorService agentThread;
  private AgentServer server;

  @BeforeEach
  void start() throws Exception {
    agentThread = Executors.newSingleThreadExecutor();
    // No enroller: every request below is refused before it would reach one.
    server = AgentServer.start(dir.resolve("agent.sock"), new NodeAgentService(null, agentThread));
  }

  @AfterEach
  void stop() throws Exception {
    server.close();
    agentThread.shutdownNow();
  }

  private ByteBuffer exchange(byte[] frame) throws IOException {
    try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
      ch.connect(UnixDomainSocketAddress.of(server.framedSocket()));
      ch.write(ByteBuffer.wrap(frame));
      return AgentWire.readFrame(ch);
    }
  }

  private Reply call(AgentWire.Request request) throws IOException {
    return AgentWire.decodeReply(exchange(AgentWire.encode(request)));
  }

  @Test
  void theSocketIsOwnerOnly() throws Exception {
    assertEquals(
        PosixFilePermissions.fromString("rw-------"),
        Files.getPosixFilePermissions(server.framedSocket()));
  }

  @Test
  void anInvalidPodIsRefusedAsOverGrpc() throws Exception {
    Reply r =
        call(
            new AgentWire.AddPod(
                new AgentWire.Pod("", "n", "ns", "/var/run/netns/x", List.of("10.0.0.1"))));
    assertEquals(Reply.error("INVALID_ARGUMENT", "pod.uid: required"), r);
    r =
        call(
            new AgentWire.AddPod(
                new AgentWire.Pod("u", "n", "ns", "/var/run/netns/x", List.of("pod.example"))));
    assertEquals(
        Reply.error("INVALID_ARGUMENT", "pod.ips[0]: \"pod.example\" is not an IP address"), r);
    assertEquals(
        Reply.error("INVALID_ARGUMENT", "uid: required"), call(new AgentWire.DelPod("", "")));
  }

  @Test
  void aRequestOfAnotherVersionIsUnimplementedWithTheReason() throws Exception {
    Reply r = AgentWire.decodeReply(exchange(new byte[] {0, 0, 0, 2, 9, 3}));
    assertEquals("UNIMPLEMENTED", r.status());
    assertTrue(r.description().contains("version 9"), r.description());
  }

  @Test
  void aMalformedRequestIsInvalidArgument() throws Exception {
    Reply r = AgentWire.decodeReply(exchange(new byte[] {0, 0, 0, 2, 1, 7}));
    assertEquals(Reply.error("INVALID_ARGUMENT", "unknown op 7"), r);
  }

  @Test
  void anOversizedFrameClosesTheConnection() {
    assertThrows(EOFException.class, () -> exchange(new byte[] {0x7f, 0, 0, 0, 1}));
  }

  @Test
  void aHandlerAnswersFromAnyThread() throws Exception {
    Path socket = dir.resolve("other.sock");
    try (FramedAgentServer s =
        FramedAgentServer.start(
            socket, (req, reply) -> agentThread.execute(() -> reply.accept(Reply.ok(true))))) {
      try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        ch.connect(UnixDomainSocketAddress.of(socket));
        ch.write(ByteBuffer.wrap(AgentWire.encode(new AgentWire.ListPods())));
        assertEquals(Reply.ok(true), AgentWire.decodeReply(AgentWire.readFrame(ch)));
      }
    }
  }
}
