package dev.nodemesh.proxy.l4;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The L4 idle timeout ({@code --tcp-idle-timeout}): on the downstream socket of a relay, which
 * every byte of both directions crosses (read from the client, written to it), so a relay that
 * moves nothing either way for {@code idle} is closed, and the relay then closes its upstream side.
 * A relay that moves anything is never cut. One timer per connection, re-armed for the time left
 * when it fires early instead of being rescheduled on every byte; time comes from the event loop's
 * ticker (an {@code EmbeddedChannel}'s frozen clock in tests).
 */
final class RelayIdleTimeout extends ChannelDuplexHandler {
  static final String NAME = "relay-idle";

  private final long idleNanos;
  private final MeterRegistry registry;
  private long lastActivity;
  private @Nullable ScheduledFuture<?> timer;

  RelayIdleTimeout(Duration idle, MeterRegistry registry) {
    this.idleNanos = idle.toNanos();
    this.registry = registry;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    lastActivity = ctx.executor().ticker().nanoTime();
    arm(ctx, idleNanos);
  }

  private void arm(ChannelHandlerContext ctx, long afterNanos) {
    timer = ctx.executor().schedule(() -> check(ctx), afterNanos, TimeUnit.NANOSECONDS);
  }

  private void check(ChannelHandlerContext ctx) {
    timer = null;
    if (!ctx.channel().isActive()) {
      return;
    }
    long quiet = ctx.executor().ticker().nanoTime() - lastActivity;
    if (quiet >= idleNanos) {
      ConnectionTimeouts.counter(registry, ConnectionTimeouts.TCP_IDLE).increment();
      ctx.channel().close();
    } else {
      arm(ctx, idleNanos - quiet);
    }
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    lastActivity = ctx.executor().ticker().nanoTime();
    ctx.fireChannelRead(msg);
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    lastActivity = ctx.executor().ticker().nanoTime();
    ctx.write(msg, promise);
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    ScheduledFuture<?> t = timer;
    if (t != null) {
      timer = null;
      t.cancel(false);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    handlerRemoved(ctx);
    ctx.fireChannelInactive();
  }
}
