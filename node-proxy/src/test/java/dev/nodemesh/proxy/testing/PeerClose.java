package dev.nodemesh.proxy.testing;

import dev.nodemesh.proxy.testing.PodSockets.Conn;
import java.io.IOException;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicReference;

/**
 * A bounded wait for the far end (the proxy) to close a test client's connection, for either kind
 * of {@link Conn} ({@link TestNode#podConnect}): what a test needs where the proxy is expected to
 * cut a connection (an idle timeout, the end of a drain's grace period). Neither kind has a read
 * timeout that fits (a plain {@code SocketChannel}'s blocking read ignores {@code SO_TIMEOUT}, a
 * pod socket's read gives up after 60 s), so the read runs on a thread of its own, and the
 * connection is closed when the time is up. Limit: the limit is at most 60 s (a pod socket's own
 * read timeout counts as "not closed").
 */
public final class PeerClose {
  private PeerClose() {}

  /**
   * Asserts that {@code conn}'s next read, within {@code limit}, finds it closed: end of stream or
   * a reset. Fails when a byte arrives instead or nothing happens in time (and then closes it).
   */
  public static void await(Conn conn, Duration limit, String what) throws InterruptedException {
    AtomicReference<Object> outcome = new AtomicReference<>();
    Thread reader =
        new Thread(
            () -> {
              try {
                outcome.set(conn.read(ByteBuffer.allocate(1)));
              } catch (IOException e) {
                outcome.set(e);
              }
            },
            "peer-close-" + what);
    reader.setDaemon(true);
    reader.start();
    reader.join(limit.toMillis());
    Object got = outcome.get();
    if (reader.isAlive() || got instanceof SocketTimeoutException) {
      try {
        conn.close(); // ends a SocketChannel's read at once; a pod socket's within its 60 s
      } catch (IOException e) {
        // the assertion below is what matters
      }
      throw new AssertionError(what + ": not closed within " + limit.toSeconds() + " s");
    }
    if (got instanceof Integer n && n >= 0) {
      throw new AssertionError(what + ": still open, read " + n + " byte(s)");
    }
    // -1 (end of stream) or an IOException (reset): closed either way.
  }
}
