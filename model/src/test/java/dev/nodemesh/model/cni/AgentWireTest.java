package dev.nodemesh.model.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.model.cni.AgentWire.Reply;
import java.io.EOFException;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The framed agent protocol: round trips, and every malformed payload a clear refusal. */
class AgentWireTest {
  private static final Pod POD =
      new Pod("u-1", "cart-7d9", "shop", "/var/run/netns/cni-ü", List.of("10.22.0.5", "fd00::5"));

  private static ByteBuffer payload(byte[] frame) throws Exception {
    return AgentWire.readFrame(Channels.newChannel(new java.io.ByteArrayInputStream(frame)));
  }

  @Test
  void requestsRoundTrip() throws Exception {
    for (AgentWire.Request r :
        List.of(
            new AgentWire.AddPod(POD),
            new AgentWire.DelPod("u-1", "/var/run/netns/x"),
            new AgentWire.ListPods())) {
      assertEquals(r, AgentWire.decodeRequest(payload(AgentWire.encode(r))));
    }
  }

  @Test
  void repliesRoundTrip() throws Exception {
    for (Reply r :
        List.of(
            Reply.ok(true),
            Reply.ok(false),
            Reply.ok(List.of(POD, new Pod("u-2", "b", "ns", "/p", List.of("10.0.0.1")))),
            Reply.error("INVALID_ARGUMENT", "pod.uid: required"))) {
      assertEquals(r, AgentWire.decodeReply(payload(AgentWire.encode(r))));
    }
  }

  @Test
  void theFrameIsALengthAndThePayload() {
    byte[] f = AgentWire.encode(new AgentWire.ListPods());
    assertEquals(List.of(0, 0, 0, 2, AgentWire.VERSION, 3), toList(f));
  }

  @Test
  void everyTruncationIsMalformed() throws Exception {
    byte[] add = AgentWire.encode(new AgentWire.AddPod(POD));
    ByteBuffer whole = payload(add);
    for (int n = 0; n < whole.limit(); n++) {
      ByteBuffer cut = ByteBuffer.wrap(Arrays.copyOfRange(add, 4, 4 + n));
      assertThrows(AgentWire.MalformedException.class, () -> AgentWire.decodeRequest(cut));
    }
    byte[] reply = AgentWire.encode(Reply.ok(List.of(POD)));
    for (int n = 0; n < reply.length - 4; n++) {
      ByteBuffer cut = ByteBuffer.wrap(Arrays.copyOfRange(reply, 4, 4 + n));
      assertThrows(AgentWire.MalformedException.class, () -> AgentWire.decodeReply(cut));
    }
  }

  @Test
  void badPayloadsAreRefusedWithTheReason() {
    var version =
        assertThrows(
            AgentWire.UnsupportedVersionException.class,
            () -> AgentWire.decodeRequest(ByteBuffer.wrap(new byte[] {9, 1})));
    assertTrue(version.getMessage().contains("version 9"), version.getMessage());
    var op =
        assertThrows(
            AgentWire.MalformedException.class,
            () -> AgentWire.decodeRequest(ByteBuffer.wrap(new byte[] {1, 7})));
    assertTrue(op.getMessage().contains("unknown op 7"), op.getMessage());
    var extra =
        assertThrows(
            AgentWire.MalformedException.class,
            () -> AgentWire.decodeRequest(ByteBuffer.wrap(new byte[] {1, 3, 0})));
    assertTrue(extra.getMessage().contains("after the message"), extra.getMessage());
    // A count of 2^31-1 IPs in a few bytes: refused before anything is allocated for it.
    byte[] hugeCount = {1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, -1, -1, -1};
    var count =
        assertThrows(
            AgentWire.MalformedException.class,
            () -> AgentWire.decodeRequest(ByteBuffer.wrap(hugeCount)));
    assertTrue(count.getMessage().contains("does not fit"), count.getMessage());
  }

  @Test
  void framesOverTheLimitOrCutShortAreRefused() {
    byte[] big = {0x7f, 0, 0, 0};
    assertThrows(AgentWire.MalformedException.class, () -> payload(big));
    byte[] negative = {-1, -1, -1, -1};
    assertThrows(AgentWire.MalformedException.class, () -> payload(negative));
    byte[] cut = {0, 0, 0, 9, 1, 3};
    assertThrows(EOFException.class, () -> payload(cut));
  }

  @Test
  void theFramedSocketIsBesideTheAgentSocket() {
    assertEquals(
        Path.of("/var/run/nodemesh/agent.sock.cni"),
        AgentWire.socketFor(Path.of("/var/run/nodemesh/agent.sock")));
  }

  private static List<Integer> toList(byte[] b) {
    Integer[] out = new Integer[b.length];
    for (int i = 0; i < b.length; i++) {
      out[i] = (int) b[i];
    }
    return List.of(out);
  }
}
