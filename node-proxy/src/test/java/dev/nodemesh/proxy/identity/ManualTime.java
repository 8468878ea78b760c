package dev.nodemesh.proxy.identity;

import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.PriorityQueue;

/** A fake clock and a manual scheduler in one: tasks run only when a test advances time. */
final class ManualTime extends Clock implements TaskScheduler {
  private Instant now;
  private long seq;
  private final PriorityQueue<Task> tasks =
      new PriorityQueue<>(
          (a, b) -> a.due.equals(b.due) ? Long.compare(a.seq, b.seq) : a.due.compareTo(b.due));

  ManualTime(Instant start) {
    this.now = start;
  }

  private static final class Task {
    final Instant due;
    final long seq;
    final Runnable run;
    boolean cancelled;

    Task(Instant due, long seq, Runnable run) {
      this.due = due;
      this.seq = seq;
      this.run = run;
    }
  }

  @Override
  public void execute(Runnable command) {
    schedule(command, Duration.ZERO);
  }

  @Override
  public Cancellable schedule(Runnable task, Duration delay) {
    Task t = new Task(now.plus(delay), seq++, task);
    tasks.add(t);
    return () -> t.cancelled = true;
  }

  /** Runs every task due by now, including ones they schedule for now. */
  void runDue() {
    advance(Duration.ZERO);
  }

  /** Moves time forward, running each task at its due time, in order. */
  void advance(Duration d) {
    Instant target = now.plus(d);
    for (int i = 0; i < 100_000; i++) {
      Task t = tasks.peek();
      if (t == null || t.due.isAfter(target)) {
        now = target;
        return;
      }
      tasks.poll();
      if (t.due.isAfter(now)) {
        now = t.due;
      }
      if (!t.cancelled) {
        t.run.run();
      }
    }
    throw new AssertionError("runaway task loop");
  }

  /** Tasks still scheduled and not cancelled. */
  long pending() {
    return tasks.stream().filter(t -> !t.cancelled).count();
  }

  @Override
  public ZoneId getZone() {
    return ZoneOffset.UTC;
  }

  @Override
  public Clock withZone(ZoneId zone) {
    return this;
  }

  @Override
  public Instant instant() {
    return now;
  }
}
