package dev.nodemesh.proxy.transport;

import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelHandlerContext;
import io.netty.util.concurrent.ScheduledFuture;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;

/**
 * One connection's timeout, moved rather than rescheduled: the deadline in force (executor ticker
 * nanos) when armed, the counter it fires, and one scheduled check at a time. Arming a deadline
 * later than the pending check leaves that check alone (when it runs early it schedules itself for
 * the deadline then); only an earlier deadline replaces it. So a kept-alive connection's requests,
 * or an h2c client's streams coming and going, move a deadline instead of scheduling and cancelling
 * a task in the loop's timer queue each time (a task allocation and two queue operations).
 *
 * <p>When an armed deadline passes on an active channel, its counter is incremented and {@code
 * expire} runs (the owner closes the connection its own way). Event loop only: no field is guarded;
 * timers run on the connection's loop (an {@code EmbeddedChannel}'s frozen clock in tests). Used by
 * {@link StreamlessTimeout} and the L7 path's HTTP/1.1 timeouts.
 */
public final class MovingDeadline {
  private final Consumer<ChannelHandlerContext> expire;
  private boolean armed;
  private long deadline;
  private @Nullable Counter firing;
  private @Nullable ScheduledFuture<?> timer;
  private long timerAt;

  /** {@code expire} runs on the loop once an armed deadline has passed, after its counter. */
  public MovingDeadline(Consumer<ChannelHandlerContext> expire) {
    this.expire = expire;
  }

  /** The deadline is now {@code after} from now, firing {@code counter}. */
  public void arm(ChannelHandlerContext ctx, Duration after, Counter counter) {
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

  /** No deadline is in force; a scheduled check that comes finds nothing due. */
  public void disarm() {
    armed = false;
  }

  /** Disarms and drops the scheduled check (the channel is gone). */
  public void cancel() {
    armed = false;
    ScheduledFuture<?> t = timer;
    if (t != null) {
      timer = null;
      t.cancel(false);
    }
  }

  private void schedule(ChannelHandlerContext ctx, long now, long at) {
    timerAt = at;
    timer = ctx.executor().schedule(() -> check(ctx), at - now, TimeUnit.NANOSECONDS);
  }

  private void check(ChannelHandlerContext ctx) {
    timer = null;
    Counter counter = firing;
    if (!armed || counter == null || !ctx.channel().isActive()) {
      return; // nothing due: the next arm schedules again
    }
    long now = ctx.executor().ticker().nanoTime();
    if (deadline - now > 0) {
      schedule(ctx, now, deadline); // armed again since this was scheduled, for later
      return;
    }
    armed = false;
    counter.increment();
    expire.accept(ctx);
  }
}
