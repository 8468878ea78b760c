package dev.nodemesh.proxy.identity;

import java.time.Duration;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;

/**
 * A serialized executor with delayed tasks: where the certificate manager keeps all its state.
 * Production wraps one single-threaded {@link ScheduledExecutorService}; tests drive a manual one
 * together with a fake clock, so rotations happen without waiting.
 */
public interface TaskScheduler extends Executor {

  /** Runs {@code task} after {@code delay}, on this scheduler, unless cancelled first. */
  Cancellable schedule(Runnable task, Duration delay);

  /** A scheduled task that may still be called off. */
  interface Cancellable {
    void cancel();
  }

  /** Over a single-threaded scheduled executor (one thread keeps the tasks serialized). */
  static TaskScheduler of(ScheduledExecutorService executor) {
    return new TaskScheduler() {
      @Override
      public void execute(Runnable task) {
        executor.execute(task);
      }

      @Override
      public Cancellable schedule(Runnable task, Duration delay) {
        ScheduledFuture<?> f = executor.schedule(task, delay.toNanos(), TimeUnit.NANOSECONDS);
        return () -> f.cancel(false);
      }
    };
  }
}
