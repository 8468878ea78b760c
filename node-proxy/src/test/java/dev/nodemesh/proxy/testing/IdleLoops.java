package dev.nodemesh.proxy.testing;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.List;

/**
 * Checks that the node proxies running in this JVM have no event loop spinning: the CPU time of
 * their I/O and accept threads over one idle second stays small. A loop that spins (for example on
 * a socket epoll keeps reporting, level-triggered, because the proxy never closed it) burns the
 * whole second, so this is a behaviour check with a wide margin, not a speed assertion. Call it
 * only while no traffic flows.
 */
public final class IdleLoops {
  /** A spinning loop uses about 1 s of CPU per second; an idle one a few milliseconds. */
  private static final double MAX_IDLE_CPU_SECONDS = 0.2;

  private IdleLoops() {}

  /** Fails when the proxies' loops used more than a fifth of a core over an idle second. */
  @SuppressWarnings("deprecation") // Thread.getId: threadId() needs a newer --release
  public static void assertQuiet(String when) throws InterruptedException {
    Thread.sleep(500); // let closes and timers that follow the last transfer settle
    ThreadMXBean mx = ManagementFactory.getThreadMXBean();
    List<Thread> loops =
        Thread.getAllStackTraces().keySet().stream()
            .filter(
                t ->
                    t.getName().startsWith("nodemesh-io")
                        || t.getName().startsWith("nodemesh-accept"))
            .toList();
    assertTrue(!loops.isEmpty(), "no event-loop threads found");
    long[] before = new long[loops.size()];
    for (int i = 0; i < loops.size(); i++) {
      before[i] = Math.max(0, mx.getThreadCpuTime(loops.get(i).getId()));
    }
    Thread.sleep(1000);
    double total = 0;
    StringBuilder busiest = new StringBuilder();
    for (int i = 0; i < loops.size(); i++) {
      double s = (Math.max(0, mx.getThreadCpuTime(loops.get(i).getId())) - before[i]) / 1e9;
      total += s;
      if (s >= 0.05) {
        busiest.append(' ').append(loops.get(i).getName()).append('=').append(s).append('s');
      }
    }
    assertTrue(
        total < MAX_IDLE_CPU_SECONDS,
        when
            + ": event loops used "
            + total
            + " s of CPU over an idle second (one is spinning):"
            + busiest);
  }
}
