package dev.nodemesh.proxy.testing;

import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Polls a condition until it holds, for end-to-end tests whose effects (a config reload, a pod's
 * enrolment, a rotation) land asynchronously. Fails the test with an {@link AssertionError} when
 * the time is up; it never asserts on how long it took.
 */
public final class Await {
  private Await() {}

  /** Polls {@code condition} every 100 ms for up to 30 s. */
  public static void waitFor(BooleanSupplier condition) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      if (condition.getAsBoolean()) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("condition not met within 30 s");
  }

  /** As {@link #waitFor(BooleanSupplier)}, with {@code why} (evaluated on failure) in the error. */
  public static void waitFor(BooleanSupplier condition, Supplier<String> why)
      throws InterruptedException {
    try {
      waitFor(condition);
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + ": " + why.get(), e);
    }
  }

  /** A condition that may throw (a scrape, a file read); a throw fails the wait at once. */
  @FunctionalInterface
  public interface Check {
    boolean ok() throws Exception;
  }

  /**
   * Polls {@code check} every 50 ms until it holds; fails with "timed out waiting for {@code what}"
   * once {@code limit} has passed.
   */
  public static void until(Duration limit, String what, Check check) throws Exception {
    long deadline = System.nanoTime() + limit.toNanos();
    while (!check.ok()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      TimeUnit.MILLISECONDS.sleep(50);
    }
  }
}
