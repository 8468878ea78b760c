package dev.nodemesh.proxy.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.embedded.EmbeddedChannel;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The pool's idle timeout on an {@link EmbeddedChannel} whose event loop runs on a frozen clock
 * that only the test advances: no wall-clock time is involved.
 */
class UpstreamPoolsTest {
  private static final Duration IDLE = Duration.ofSeconds(60);

  private static EmbeddedChannel pooled(UpstreamPools.EndpointPool pool) {
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.freezeTime();
    ch.pipeline().addLast(UpstreamPools.exchangeOf(pool));
    return ch;
  }

  private static void advance(EmbeddedChannel ch, long seconds) {
    ch.advanceTimeBy(seconds, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
  }

  @Test
  void anIdleHttp1ConnectionIsClosedAfterTheIdleTimeoutAndLeavesThePool() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel ch = pooled(pool);
    UpstreamPools.release(ch, true);
    assertEquals(1, pool.idleCount());
    advance(ch, 59);
    assertTrue(ch.isOpen(), "closed before the idle timeout");
    assertEquals(1, pool.idleCount());
    advance(ch, 1);
    assertFalse(ch.isOpen(), "still open after the idle timeout");
    assertEquals(0, pool.idleCount());
    assertNull(pool.take());
  }

  @Test
  void takingAConnectionCancelsItsTimerAndParkingAgainRestartsIt() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel ch = pooled(pool);
    UpstreamPools.release(ch, true);
    advance(ch, 50);
    assertSame(ch, pool.take());
    advance(ch, 30); // in use: the old timer (due at 60 s) must not close it
    assertTrue(ch.isOpen());
    UpstreamPools.release(ch, true);
    advance(ch, 59);
    assertTrue(ch.isOpen(), "the idle time counts from the last release");
    advance(ch, 1);
    assertFalse(ch.isOpen());
    assertEquals(0, pool.idleCount());
  }

  @Test
  void aConnectionTheServerClosedLeavesThePoolAndItsTimer() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel ch = pooled(pool);
    UpstreamPools.release(ch, true);
    ch.close();
    assertEquals(0, pool.idleCount());
    assertFalse(ch.hasPendingTasks(), "the idle timer of a closed connection was left scheduled");
  }

  @Test
  void aNonReusableExchangeIsClosedAtOnceAndNeverPooled() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel ch = pooled(pool);
    UpstreamPools.release(ch, false);
    assertFalse(ch.isOpen());
    assertEquals(0, pool.idleCount());
  }

  @Test
  void anHttp2ConnectionIsClosedOnlyWhenNoStreamWasOpenForTheIdleTimeout() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel conn = new EmbeddedChannel();
    conn.freezeTime();
    pool.h2Connection = conn;
    pool.streamOpened();
    pool.streamOpened();
    pool.streamClosed(conn);
    advance(conn, 120);
    assertTrue(conn.isOpen(), "closed with a stream still open");
    pool.streamClosed(conn); // the last stream: the idle timer starts
    advance(conn, 40);
    pool.streamOpened(); // used again before the timeout: the timer is cancelled
    advance(conn, 40);
    assertTrue(conn.isOpen());
    pool.streamClosed(conn);
    advance(conn, 59);
    assertTrue(conn.isOpen());
    advance(conn, 1);
    assertFalse(conn.isOpen(), "an HTTP/2 connection with no stream stayed open");
    assertNull(pool.h2Connection);
  }

  @Test
  void streamsOfAnOlderHttp2ConnectionDoNotTouchTheCurrentOnesCount() {
    UpstreamPools.EndpointPool pool = new UpstreamPools.EndpointPool(IDLE);
    EmbeddedChannel old = new EmbeddedChannel();
    EmbeddedChannel conn = new EmbeddedChannel();
    conn.freezeTime();
    pool.h2Connection = conn;
    pool.streamOpened();
    pool.streamClosed(old); // a late close from the previous connection
    advance(conn, 120);
    assertTrue(conn.isOpen());
    assertEquals(1, pool.h2Streams);
    old.finishAndReleaseAll();
    conn.finishAndReleaseAll();
  }
}
