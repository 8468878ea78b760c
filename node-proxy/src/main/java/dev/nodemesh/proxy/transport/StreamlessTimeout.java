package dev.nodemesh.proxy.transport;

import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Stream;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes an HTTP/2 connection that has no stream open for too long: the h2c downstream (before its
 * first stream: the request-header timeout; after its last: the idle timeout) and the HBONE server.
 * Added right after the {@link Http2FrameCodec}, it follows the codec's own stream count, so frames
 * that open no stream (PING, SETTINGS, a header block never finished) keep nothing alive, and a
 * stream that is open, however quiet, is never cut here (its own relay or request decides). The
 * close goes through the codec, which sends GOAWAY first. Timers run on the connection's event loop
 * (an {@code EmbeddedChannel}'s frozen clock in tests).
 */
public final class StreamlessTimeout extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(StreamlessTimeout.class);

  private final Duration first;
  private final Counter firstCounter;
  private final Duration idle;
  private final Counter idleCounter;
  // The deadline in force (executor ticker nanos) when armed, and whose counter it fires. One
  // scheduled check at a time: a stream opening only disarms, and arming a deadline later than the
  // pending check keeps it (it schedules itself for the rest when it runs). So streams coming and
  // going (an h2c client's requests) move a deadline instead of scheduling and cancelling a task
  // each time the count reaches 0.
  private boolean armed;
  private long deadline;
  private @Nullable Counter firing;
  private @Nullable ScheduledFuture<?> timer;
  private long timerAt;

  /**
   * @param first how long the connection may go before its first stream opens ({@code firstCounter}
   *     counts its firings)
   * @param idle how long it may go with no stream open after that ({@code idleCounter})
   */
  public StreamlessTimeout(
      Duration first, Counter firstCounter, Duration idle, Counter idleCounter) {
    this.first = first;
    this.firstCounter = firstCounter;
    this.idle = idle;
    this.idleCounter = idleCounter;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    Http2FrameCodec codec = ctx.pipeline().get(Http2FrameCodec.class);
    if (codec == null) {
      throw new IllegalStateException("StreamlessTimeout goes after an Http2FrameCodec");
    }
    Http2Connection connection = codec.connection();
    connection.addListener(
        new Http2ConnectionAdapter() {
          @Override
          public void onStreamActive(Http2Stream stream) {
            armed = false;
          }

          @Override
          public void onStreamClosed(Http2Stream stream) {
            if (connection.numActiveStreams() == 0) {
              arm(ctx, idle, idleCounter);
            }
          }
        });
    if (connection.numActiveStreams() == 0) {
      arm(ctx, first, firstCounter);
    }
  }

  private void arm(ChannelHandlerContext ctx, Duration after, Counter counter) {
    long now = ctx.executor().ticker().nanoTime();
    long at = now + after.toNanos();
    armed = true;
    deadline = at;
    firing = counter;
    ScheduledFuture<?> t = timer;
    if (t != null) {
      if (timerAt - at <= 0) {
        return; // runs by the deadline and re-arms itself for it
      }
      timer = null;
      t.cancel(false);
    }
    schedule(ctx, now, at);
  }

  private void schedule(ChannelHandlerContext ctx, long now, long at) {
    timerAt = at;
    timer = ctx.executor().schedule(() -> check(ctx), at - now, TimeUnit.NANOSECONDS);
  }

  private void check(ChannelHandlerContext ctx) {
    timer = null;
    Counter counter = firing;
    if (!armed || counter == null || !ctx.channel().isActive()) {
      return; // a stream opened: the next arm schedules again
    }
    long now = ctx.executor().ticker().nanoTime();
    if (deadline - now > 0) {
      schedule(ctx, now, deadline); // armed again since this was scheduled, for later
      return;
    }
    armed = false;
    counter.increment();
    log.debug(
        "HTTP/2 connection {}: no stream open for {}, closing",
        ctx.channel().remoteAddress(),
        counter == firstCounter ? first : idle);
    ctx.close(); // the codec sends GOAWAY, then closes: no stream is open
  }

  private void cancel() {
    armed = false;
    ScheduledFuture<?> t = timer;
    if (t != null) {
      timer = null;
      t.cancel(false);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancel();
    ctx.fireChannelInactive();
  }
}
