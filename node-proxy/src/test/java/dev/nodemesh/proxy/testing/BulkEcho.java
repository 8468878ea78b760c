package dev.nodemesh.proxy.testing;

import dev.nodemesh.proxy.testing.PodSockets.Conn;
import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

/**
 * A bulk transfer through an echo server ({@link TestServer.Mode#ECHO}): {@code size} seeded
 * pseudo-random bytes written on one thread, then a half-close, while this thread reads the echo
 * until EOF; both sides are digested (SHA-256) so a test can assert the bytes arrived identical.
 * The writer's digest is waited for (at most 60 s) only when asked, so a test that checks the count
 * first fails on the count when the transfer broke off.
 */
public final class BulkEcho {
  private final long received;
  private final Future<byte[]> sent;
  private final byte[] receivedDigest;

  private BulkEcho(long received, Future<byte[]> sent, byte[] receivedDigest) {
    this.received = received;
    this.sent = sent;
    this.receivedDigest = receivedDigest;
  }

  /** How many bytes came back before EOF. */
  public long received() {
    return received;
  }

  /** SHA-256 of what came back. */
  public byte[] receivedDigest() {
    return receivedDigest.clone();
  }

  /** SHA-256 of what was written; waits up to 60 s for the writer. */
  public byte[] sentDigest() throws Exception {
    return sent.get(60, TimeUnit.SECONDS);
  }

  /** Runs the transfer over {@code ch} (left open; the caller closes it). */
  public static BulkEcho through(Conn ch, long size, long seed) throws Exception {
    ExecutorService writer = Executors.newSingleThreadExecutor();
    try {
      Future<byte[]> sent =
          writer.submit(
              () -> {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                Random r = new Random(seed);
                byte[] chunk = new byte[256 * 1024];
                for (long done = 0; done < size; done += chunk.length) {
                  r.nextBytes(chunk);
                  d.update(chunk);
                  ByteBuffer b = ByteBuffer.wrap(chunk);
                  while (b.hasRemaining()) {
                    ch.write(b);
                  }
                }
                ch.shutdownOutput();
                return d.digest();
              });
      MessageDigest got = MessageDigest.getInstance("SHA-256");
      ByteBuffer buf = ByteBuffer.allocate(256 * 1024);
      long received = 0;
      int n;
      while ((n = ch.read(buf)) >= 0) {
        buf.flip();
        got.update(buf);
        buf.clear();
        received += n;
      }
      return new BulkEcho(received, sent, got.digest());
    } finally {
      writer.shutdown(); // the writer ends once done, or when the caller closes the channel
    }
  }
}
