package dev.nodemesh.proxy.liveness;

import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * Whether every data-plane event loop still turns. Each {@link #tick} (once a second on its own
 * thread, {@code nodemesh-watchdog}) hands every loop a probe task unless the previous one is still
 * waiting; the probe only reads the clock. A loop's lag is how long its latest probe waited in the
 * queue, or has been waiting so far if it has not run: so a wedged loop (a blocking call, a busy
 * handler) or a dead one (its thread gone) shows a lag that grows, where a probe that re-schedules
 * itself on the loop would just stop reporting.
 *
 * <p>A lag of {@code unhealthyAfter} or more makes {@link #unhealthyReason} say so ({@code
 * /healthz} answers 503, so the kubelet's liveness probe restarts the pod); a probe waiting {@code
 * fatalAfter} (unless zero), or a loop that has shut down while the watchdog runs, ends the process
 * through {@code fatal} at once. The clock and the ticking are injected so tests drive both.
 */
public final class LoopWatchdog implements AutoCloseable {
  private static final long NONE = Long.MIN_VALUE;

  /** One watched loop; {@code sentAt} is written by the ticker, cleared by the probe. */
  private static final class Watched {
    final String name;
    final String group;
    final int index;
    final EventExecutor loop;
    volatile long sentAt = NONE;
    volatile long lastLag;

    Watched(String group, int index, EventExecutor loop) {
      this.name = group + "-" + index;
      this.group = group;
      this.index = index;
      this.loop = loop;
    }
  }

  private final List<Watched> loops = new ArrayList<>();
  private final LongSupplier nanoClock;
  private final long unhealthyNanos;
  private final long fatalNanos;
  private final Consumer<String> fatal;
  private volatile boolean closed;
  private @Nullable ScheduledExecutorService ticker;

  /**
   * @param groups loop groups by name ("accept", "io"), watched in iteration order
   * @param nanoClock a monotonic clock in nanoseconds ({@code System::nanoTime})
   * @param unhealthyAfter a lag of at least this is unhealthy
   * @param fatalAfter a probe waiting this long ends the process; {@link Duration#ZERO}: never
   * @param fatal ends the process with the reason ({@link FatalErrors#die} in production)
   */
  public LoopWatchdog(
      Map<String, EventLoopGroup> groups,
      LongSupplier nanoClock,
      Duration unhealthyAfter,
      Duration fatalAfter,
      Consumer<String> fatal) {
    groups.forEach(
        (group, g) -> {
          int i = 0;
          for (EventExecutor e : g) {
            loops.add(new Watched(group, i++, e));
          }
        });
    this.nanoClock = nanoClock;
    this.unhealthyNanos = unhealthyAfter.toNanos();
    this.fatalNanos = fatalAfter.toNanos();
    this.fatal = fatal;
  }

  /** Ticks every {@code period} on a thread of its own until {@link #close}. */
  public LoopWatchdog start(Duration period) {
    ScheduledExecutorService t =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread thread = new Thread(r, "nodemesh-watchdog");
              thread.setDaemon(true);
              thread.setUncaughtExceptionHandler(FatalErrors.uncaught());
              return thread;
            });
    ticker = t;
    var unused =
        t.scheduleWithFixedDelay(
            this::tick, period.toNanos(), period.toNanos(), TimeUnit.NANOSECONDS);
    return this;
  }

  /** Probes every loop whose last probe has run; checks the ones still waiting. */
  public void tick() {
    if (closed) {
      return;
    }
    long now = nanoClock.getAsLong();
    for (Watched w : loops) {
      if (w.loop.isShuttingDown()) {
        if (!closed) {
          fatal.accept("event loop " + w.name + " has stopped (its thread is gone)");
        }
        continue;
      }
      long sent = w.sentAt;
      if (sent == NONE) {
        w.sentAt = now;
        try {
          w.loop.execute(() -> probe(w));
        } catch (RejectedExecutionException e) {
          if (!closed) {
            fatal.accept("event loop " + w.name + " refuses tasks: " + e.getMessage());
          }
        }
      } else if (fatalNanos > 0 && now - sent >= fatalNanos) {
        fatal.accept(
            "event loop "
                + w.name
                + " has not turned for "
                + seconds(now - sent)
                + " s (stalled or blocked)");
      }
    }
  }

  private void probe(Watched w) {
    long sent = w.sentAt;
    if (sent != NONE) {
      w.lastLag = Math.max(0, nanoClock.getAsLong() - sent);
      w.sentAt = NONE;
    }
  }

  /** The lag of loop {@code index} of {@code group} in seconds (see the class comment). */
  public double lagSeconds(String group, int index) {
    for (Watched w : loops) {
      if (w.group.equals(group) && w.index == index) {
        return lagNanos(w, nanoClock.getAsLong()) / 1e9;
      }
    }
    return Double.NaN;
  }

  private static long lagNanos(Watched w, long now) {
    long sent = w.sentAt;
    return sent == NONE ? w.lastLag : Math.max(w.lastLag, now - sent);
  }

  /** Null while every loop turns; otherwise which loops lag or stopped, for {@code /healthz}. */
  public @Nullable String unhealthyReason() {
    long now = nanoClock.getAsLong();
    List<String> bad = new ArrayList<>();
    for (Watched w : loops) {
      if (w.loop.isShuttingDown()) {
        bad.add("event loop " + w.name + " has stopped");
      } else {
        long lag = lagNanos(w, now);
        if (lag >= unhealthyNanos) {
          bad.add("event loop " + w.name + " lags " + seconds(lag) + " s");
        }
      }
    }
    return bad.isEmpty() ? null : String.join(", ", bad);
  }

  private static String seconds(long nanos) {
    return String.format(java.util.Locale.ROOT, "%.1f", nanos / 1e9);
  }

  /** Stops watching (before the loops shut down, so their end is not mistaken for a death). */
  @Override
  public void close() {
    closed = true;
    ScheduledExecutorService t = ticker;
    if (t != null) {
      t.shutdownNow();
    }
  }
}
