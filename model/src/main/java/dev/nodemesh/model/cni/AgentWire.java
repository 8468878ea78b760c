package dev.nodemesh.model.cni;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The small framed protocol the CNI plugin speaks to the node agent, on a Unix socket of its own
 * beside the agent's gRPC socket ({@link #socketFor}). It exists so the plugin, a process started
 * once per pod start and stop, loads no gRPC, Netty or protobuf: the JDK's own {@code
 * UnixDomainSocketAddress} and this class are all it needs. The node proxy serves the same three
 * calls over gRPC ({@code nodemesh.agent.v1.NodeAgent}) for everyone else; both go to the same
 * validation and the same agent thread, and failures carry the gRPC status names, so the plugin's
 * error objects read as they did over gRPC.
 *
 * <p>Wire format, version {@value #VERSION}, one request and one reply per connection: every frame
 * is a 4-byte big-endian payload length (at most {@value #MAX_FRAME}) and the payload. A string is
 * a 4-byte length and that many UTF-8 bytes.
 *
 * <ul>
 *   <li>request: version byte, op byte ({@code 1} AddPod: uid, name, namespace, netns path, count,
 *       IPs; {@code 2} DelPod: uid, netns path; {@code 3} ListPods: nothing)
 *   <li>reply: version byte, status ({@code "OK"} or a gRPC status name such as {@code
 *       INVALID_ARGUMENT}), description, a flag byte (AddPod: already enrolled; DelPod: was
 *       enrolled), a count and that many pods (ListPods), each as in AddPod.
 * </ul>
 *
 * <p>A server answers a request of another version with {@code UNIMPLEMENTED} naming the versions,
 * so a newer plugin against an older agent fails with a reason (the plugin then says "try again
 * later", and the runtime retries). Limits: no streaming, no pipelining; a frame is read whole.
 */
public final class AgentWire {
  public static final int VERSION = 1;

  /** Larger than any honest request; a ListPods reply of thousands of pods still fits. */
  public static final int MAX_FRAME = 1 << 20;

  public static final String OK = "OK";

  private static final byte OP_ADD = 1;
  private static final byte OP_DEL = 2;
  private static final byte OP_LIST = 3;

  private AgentWire() {}

  /**
   * The framed socket that goes with an agent's gRPC socket: the same path with {@code .cni}
   * appended ({@code /var/run/nodemesh/agent.sock.cni}). One rule for the plugin and the node
   * proxy, so the conflist keeps naming only {@code agentSocket}.
   */
  public static Path socketFor(Path agentSocket) {
    Path name = agentSocket.getFileName();
    return agentSocket.resolveSibling((name == null ? "" : name.toString()) + ".cni");
  }

  /** A pod as the plugin reports it: who it is, its network namespace path, its IPs. */
  public record Pod(String uid, String name, String namespace, String netnsPath, List<String> ips) {
    public Pod {
      ips = List.copyOf(ips);
    }
  }

  /** One call. */
  public sealed interface Request permits AddPod, DelPod, ListPods {}

  public record AddPod(Pod pod) implements Request {}

  public record DelPod(String uid, String netnsPath) implements Request {}

  public record ListPods() implements Request {}

  /**
   * The answer: {@code status} is {@link #OK} or a gRPC status name with its {@code description};
   * {@code flag} and {@code pods} are the call's result (false and empty when they do not apply).
   */
  public record Reply(String status, String description, boolean flag, List<Pod> pods) {
    public Reply {
      pods = List.copyOf(pods);
    }

    public static Reply ok(boolean flag) {
      return new Reply(OK, "", flag, List.of());
    }

    public static Reply ok(List<Pod> pods) {
      return new Reply(OK, "", false, pods);
    }

    public static Reply error(String status, String description) {
      return new Reply(status, description, false, List.of());
    }

    public boolean isOk() {
      return OK.equals(status);
    }
  }

  /** A payload that is not a well-formed message of this protocol. */
  public static class MalformedException extends IOException {
    private static final long serialVersionUID = 1L;

    public MalformedException(String message) {
      super(message);
    }
  }

  /** The request as a whole frame (length prefix included). */
  public static byte[] encode(Request request) {
    Writer w = new Writer();
    w.u8(VERSION);
    // The code targets Java 17: no pattern switch over the sealed type.
    if (request instanceof AddPod a) {
      w.u8(OP_ADD);
      w.pod(a.pod());
    } else if (request instanceof DelPod d) {
      w.u8(OP_DEL);
      w.string(d.uid());
      w.string(d.netnsPath());
    } else {
      w.u8(OP_LIST);
    }
    return w.frame();
  }

  /** The reply as a whole frame (length prefix included). */
  public static byte[] encode(Reply reply) {
    Writer w = new Writer();
    w.u8(VERSION);
    w.string(reply.status());
    w.string(reply.description());
    w.u8(reply.flag() ? 1 : 0);
    w.u32(reply.pods().size());
    for (Pod p : reply.pods()) {
      w.pod(p);
    }
    return w.frame();
  }

  /**
   * A request payload (without its length prefix). A payload of another version is {@link
   * UnsupportedVersionException}, anything else malformed {@link MalformedException}.
   */
  public static Request decodeRequest(ByteBuffer payload) throws MalformedException {
    Reader r = new Reader(payload);
    int version = r.u8();
    if (version != VERSION) {
      throw new UnsupportedVersionException(version);
    }
    int op = r.u8();
    Request req =
        switch (op) {
          case OP_ADD -> new AddPod(r.pod());
          case OP_DEL -> new DelPod(r.string(), r.string());
          case OP_LIST -> new ListPods();
          default -> throw new MalformedException("unknown op " + op);
        };
    r.end();
    return req;
  }

  /** A reply payload (without its length prefix). */
  public static Reply decodeReply(ByteBuffer payload) throws MalformedException {
    Reader r = new Reader(payload);
    int version = r.u8();
    if (version != VERSION) {
      throw new UnsupportedVersionException(version);
    }
    String status = r.string();
    String description = r.string();
    boolean flag = r.u8() != 0;
    int n = r.count();
    List<Pod> pods = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      pods.add(r.pod());
    }
    r.end();
    return new Reply(status, description, flag, pods);
  }

  /** A frame of a version this side does not speak. */
  public static final class UnsupportedVersionException extends MalformedException {
    private static final long serialVersionUID = 1L;

    UnsupportedVersionException(int version) {
      super("protocol version " + version + " is not supported (this side speaks " + VERSION + ")");
    }
  }

  /**
   * Reads one frame's payload from a blocking channel: the length, then exactly that many bytes.
   * End of stream before the frame is complete is an {@link EOFException}.
   */
  public static ByteBuffer readFrame(ReadableByteChannel in) throws IOException {
    ByteBuffer len = ByteBuffer.allocate(4);
    fill(in, len);
    int n = len.flip().getInt();
    if (n < 0 || n > MAX_FRAME) {
      throw new MalformedException("frame length " + n + " is not within 0.." + MAX_FRAME);
    }
    ByteBuffer payload = ByteBuffer.allocate(n);
    fill(in, payload);
    return payload.flip();
  }

  private static void fill(ReadableByteChannel in, ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      if (in.read(b) < 0) {
        throw new EOFException("connection closed in the middle of a frame");
      }
    }
  }

  private static final class Writer {
    private ByteBuffer buf = ByteBuffer.allocate(256).position(4);

    void u8(int v) {
      room(1).put((byte) v);
    }

    void u32(int v) {
      room(4).putInt(v);
    }

    void string(String s) {
      byte[] b = s.getBytes(StandardCharsets.UTF_8);
      room(4 + b.length).putInt(b.length).put(b);
    }

    void pod(Pod p) {
      string(p.uid());
      string(p.name());
      string(p.namespace());
      string(p.netnsPath());
      u32(p.ips().size());
      for (String ip : p.ips()) {
        string(ip);
      }
    }

    private ByteBuffer room(int n) {
      if (buf.remaining() < n) {
        ByteBuffer bigger = ByteBuffer.allocate(Math.max(buf.capacity() * 2, buf.position() + n));
        buf = bigger.put(buf.flip());
      }
      return buf;
    }

    byte[] frame() {
      int payload = buf.position() - 4;
      if (payload > MAX_FRAME) {
        throw new IllegalArgumentException(
            "message of " + payload + " bytes is over the limit of " + MAX_FRAME);
      }
      buf.putInt(0, payload);
      byte[] out = new byte[buf.position()];
      buf.flip().get(out);
      return out;
    }
  }

  private static final class Reader {
    private final ByteBuffer in;

    Reader(ByteBuffer in) {
      this.in = in;
    }

    int u8() throws MalformedException {
      need(1);
      return in.get() & 0xff;
    }

    /** A count of items, each at least 4 bytes: bounded by what is left, so no huge allocation. */
    int count() throws MalformedException {
      need(4);
      int n = in.getInt();
      if (n < 0 || n > in.remaining() / 4) {
        throw new MalformedException("count " + n + " does not fit the frame");
      }
      return n;
    }

    String string() throws MalformedException {
      need(4);
      int n = in.getInt();
      if (n < 0) {
        throw new MalformedException("negative string length " + n);
      }
      need(n);
      byte[] b = new byte[n];
      in.get(b);
      return new String(b, StandardCharsets.UTF_8);
    }

    Pod pod() throws MalformedException {
      String uid = string();
      String name = string();
      String namespace = string();
      String netns = string();
      int n = count();
      List<String> ips = new ArrayList<>(n);
      for (int i = 0; i < n; i++) {
        ips.add(string());
      }
      return new Pod(uid, name, namespace, netns, ips);
    }

    void end() throws MalformedException {
      if (in.hasRemaining()) {
        throw new MalformedException(in.remaining() + " bytes after the message");
      }
    }

    private void need(int n) throws MalformedException {
      if (in.remaining() < n) {
        throw new MalformedException("message ends early");
      }
    }
  }
}
