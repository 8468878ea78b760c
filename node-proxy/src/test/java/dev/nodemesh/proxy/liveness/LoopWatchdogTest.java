package dev.nodemesh.proxy.liveness;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.DefaultEventLoopGroup;
import io.netty.channel.EventLoopGroup;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The watchdog with a clock the test moves and ticks the test makes: real loops run the probes, one
 * loop is wedged by a task that waits on a latch, and nothing depends on wall-clock time.
 */
class LoopWatchdogTest {
  private final AtomicLong now = new AtomicLong(1_000_000_000L);
  private final List<String> fatal = new ArrayList<>();
  private EventLoopGroup io;
  private LoopWatchdog watchdog;

  @BeforeEach
  void setUp() {
    io = new DefaultEventLoopGroup(2);
    Map<String, EventLoopGroup> groups = new LinkedHashMap<>();
    groups.put("io", io);
    watchdog =
        new LoopWatchdog(
            groups, now::get, Duration.ofSeconds(5), Duration.ofSeconds(30), fatal::add);
  }

  @AfterEach
  void tearDown() {
    watchdog.close();
    io.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }

  /** Waits (on this thread) until every loop has run what was queued before. */
  private void drain() throws Exception {
    for (var loop : io) {
      loop.submit(() -> {}).get(10, TimeUnit.SECONDS);
    }
  }

  @Test
  void turningLoopsAreHealthyWithTheirQueueTimeAsLag() throws Exception {
    // Both loops busy for 3 ms (on the test's clock) while the probes wait behind the work.
    CountDownLatch busy = new CountDownLatch(1);
    for (var loop : io) {
      loop.execute(
          () -> {
            try {
              busy.await(10, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
              Thread.currentThread().interrupt();
            }
          });
    }
    watchdog.tick();
    now.addAndGet(3_000_000);
    busy.countDown();
    drain();
    assertNull(watchdog.unhealthyReason());
    assertEquals(0.003, watchdog.lagSeconds("io", 0), 1e-9);
    assertEquals(0.003, watchdog.lagSeconds("io", 1), 1e-9);
    assertTrue(fatal.isEmpty());
  }

  @Test
  void aWedgedLoopIsUnhealthyPastTheThresholdThenFatalPastTheStall() throws Exception {
    CountDownLatch release = new CountDownLatch(1);
    var wedged = io.next();
    int index = indexOf(wedged);
    wedged.execute(
        () -> {
          try {
            release.await(30, TimeUnit.SECONDS);
          } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
          }
        });
    var other = otherThan(wedged);
    watchdog.tick();
    other.submit(() -> {}).get(10, TimeUnit.SECONDS); // its probe has run
    now.addAndGet(4_900_000_000L);
    assertNull(watchdog.unhealthyReason(), "4.9 s is under the 5 s threshold");
    now.addAndGet(200_000_000L);
    String reason = watchdog.unhealthyReason();
    assertNotNull(reason);
    assertTrue(reason.contains("io-" + index + " lags 5.1 s"), reason);
    assertEquals(5.1, watchdog.lagSeconds("io", index), 1e-9);
    watchdog.tick(); // still waiting, not yet fatal
    other.submit(() -> {}).get(10, TimeUnit.SECONDS);
    assertTrue(fatal.isEmpty());
    now.addAndGet(25_000_000_000L); // 30.1 s since the probe was queued
    watchdog.tick();
    assertEquals(1, fatal.size(), fatal.toString());
    assertTrue(fatal.get(0).contains("io-" + index + " has not turned for 30.1 s"), fatal.get(0));

    release.countDown();
    drain();
    now.addAndGet(1_000_000_000L);
    watchdog.tick();
    drain();
    assertNull(watchdog.unhealthyReason(), "the loop turns again");
  }

  @Test
  void aLoopThatStoppedIsFatalAndUnhealthy() throws Exception {
    io.shutdownGracefully(0, 0, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    watchdog.tick();
    assertEquals(2, fatal.size(), fatal.toString());
    assertTrue(fatal.get(0).contains("has stopped"), fatal.get(0));
    assertNotNull(watchdog.unhealthyReason());
  }

  @Test
  void aClosedWatchdogIgnoresLoopsShuttingDown() throws Exception {
    watchdog.close();
    io.shutdownGracefully(0, 0, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    watchdog.tick();
    assertTrue(fatal.isEmpty(), fatal.toString());
  }

  private io.netty.util.concurrent.EventExecutor otherThan(
      io.netty.util.concurrent.EventExecutor loop) {
    for (var e : io) {
      if (e != loop) {
        return e;
      }
    }
    throw new AssertionError("one loop only");
  }

  private int indexOf(io.netty.util.concurrent.EventExecutor loop) {
    int i = 0;
    for (var e : io) {
      if (e == loop) {
        return i;
      }
      i++;
    }
    throw new AssertionError("not a loop of the group");
  }
}
