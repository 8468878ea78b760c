package dev.nodemesh.proxy;

import java.lang.management.ManagementFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where the node proxy's start goes (issue 19: start to {@code /ready} with 100 pods to re-enrol):
 * named moments, each as milliseconds since the JVM started, logged as one line the first time the
 * proxy answers ready, e.g. {@code start-up (ms since the JVM started): main 310, config 402, ...,
 * ready 1210}. The launcher marks its own moments ({@code main}) before the proxy exists, so {@link
 * #PROCESS} is one per process; a JVM that starts several proxies (tests) logs the line once.
 *
 * <p>The JVM's start is the runtime MXBean's (taken early in JVM creation, so the exec and the
 * loading of libjvm before it are not counted; the bench measures from before the exec).
 */
public final class StartupTimeline {
  /**
   * This process's timeline. Nothing but the clock is touched before the line is logged: every
   * command of the launcher marks {@code main}, and only the proxy needs the JVM's start time (the
   * management classes) and a logger.
   */
  public static final StartupTimeline PROCESS =
      new StartupTimeline(
          System::currentTimeMillis, () -> ManagementFactory.getRuntimeMXBean().getStartTime());

  private record Mark(String phase, long atMillis) {}

  private final LongSupplier clock;
  private final LongSupplier startMillis;
  private final List<Mark> marks = new ArrayList<>();
  private final AtomicBoolean logged = new AtomicBoolean();

  /**
   * @param clock wall-clock milliseconds
   * @param startMillis the JVM's start on that clock (asked when the line is written)
   */
  StartupTimeline(LongSupplier clock, LongSupplier startMillis) {
    this.clock = clock;
    this.startMillis = startMillis;
  }

  /** Records that {@code phase} is done now. Cheap, from any thread. */
  public void mark(String phase) {
    long now = clock.getAsLong();
    synchronized (marks) {
      marks.add(new Mark(phase, now));
    }
  }

  /** As {@link #mark}, unless {@code phase} is marked already (a config accepted again). */
  public void markOnce(String phase) {
    long now = clock.getAsLong();
    synchronized (marks) {
      if (marks.stream().noneMatch(m -> m.phase().equals(phase))) {
        marks.add(new Mark(phase, now));
      }
    }
  }

  /** Marks {@code ready} and logs the whole line, the first time only. */
  public void ready() {
    if (logged.compareAndSet(false, true)) {
      mark("ready");
      Logger log = LoggerFactory.getLogger(StartupTimeline.class);
      log.info("start-up (ms since the JVM started): {}", describe());
    }
  }

  /** Every mark so far in order, as {@code phase ms, ...}. */
  public String describe() {
    long start = startMillis.getAsLong();
    StringBuilder s = new StringBuilder();
    synchronized (marks) {
      for (Mark m : marks) {
        if (s.length() > 0) {
          s.append(", ");
        }
        s.append(m.phase()).append(' ').append(m.atMillis() - start);
      }
    }
    return s.toString();
  }
}
