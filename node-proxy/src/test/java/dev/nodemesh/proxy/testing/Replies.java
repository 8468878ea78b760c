package dev.nodemesh.proxy.testing;

import dev.nodemesh.proxy.testing.PodSockets.Conn;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * Reads a test server's whole reply from a connection a test made, up to the peer's close (the
 * {@link TestServer} modes answer and close). Replies are short: more than 64 KiB is an error.
 */
public final class Replies {
  private Replies() {}

  /** The reply without surrounding white space; closes {@code ch}. */
  public static String readLine(SocketChannel ch) throws IOException {
    return readLine(Conn.of(ch));
  }

  /** The reply without surrounding white space; closes {@code ch}. */
  public static String readLine(Conn ch) throws IOException {
    try (ch) {
      return readAll(ch).strip();
    }
  }

  /** Everything read until the peer closes; leaves {@code ch} open. */
  public static String readAll(SocketChannel ch) throws IOException {
    return readAll(Conn.of(ch));
  }

  /** Everything read until the peer closes; leaves {@code ch} open. */
  public static String readAll(Conn ch) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    while (ch.read(buf) >= 0) {
      if (!buf.hasRemaining()) {
        throw new IOException("reply too long");
      }
    }
    buf.flip();
    return StandardCharsets.UTF_8.decode(buf).toString();
  }

  /**
   * Writes {@code text} and reads as many bytes back (an ECHO server echoes as it reads); leaves
   * {@code ch} open.
   */
  public static String echo(Conn ch, String text) throws IOException {
    byte[] out = text.getBytes(StandardCharsets.UTF_8);
    ch.write(ByteBuffer.wrap(out));
    ByteBuffer in = ByteBuffer.allocate(out.length);
    while (in.hasRemaining()) {
      if (ch.read(in) < 0) {
        throw new IOException("closed after " + in.position() + " bytes of " + text);
      }
    }
    return new String(in.array(), StandardCharsets.UTF_8);
  }
}
