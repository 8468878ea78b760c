package dev.nodemesh.proxy.liveness;

import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.internal.OutOfDirectMemoryError;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * What the proxy does with an {@link Error}: it is fatal. Netty catches everything a handler throws
 * and hands it to {@code exceptionCaught}, where a handler that closes its connection would
 * otherwise swallow an {@link OutOfMemoryError} or a {@link StackOverflowError} and leave the
 * process running with a corrupt heap or a dead thread (seen: three of four I/O threads dead after
 * an OOM, {@code /healthz} still 200). So every data-plane {@code exceptionCaught} calls {@link
 * #check}, every data-plane thread gets {@link #uncaught} as its handler, and the {@link
 * LoopWatchdog} reports a loop that stopped: each ends in {@link #die}, which logs loudly on stderr
 * and halts with {@value #EXIT_STATUS} (no shutdown hook: a drain would wait on the dead loops).
 *
 * <p>One kind of {@code Error} is contained instead: Netty's {@link OutOfDirectMemoryError} is a
 * refusal by Netty's own direct-memory budget before anything is allocated, so the connection that
 * asked is closed (by its handler, as for any exception), the refusal is counted ({@link
 * #allocationFailures}) and logged at WARN at most once per {@value #LOG_INTERVAL_SECONDS} s.
 *
 * <p>Process-wide (a static hook) because the handlers that report are made in many places that
 * share nothing else; tests replace the exit with {@link #install}. Limit: an {@code Error} thrown
 * by a scheduled task or a future listener is logged by Netty at WARN and not seen here; a heap
 * exhaustion there still shows as a stalled or dead loop to the watchdog.
 */
public final class FatalErrors {
  private static final Logger log = LoggerFactory.getLogger(FatalErrors.class);

  /** {@code EX_SOFTWARE}: the process stopped itself after an internal failure. */
  public static final int EXIT_STATUS = 70;

  static final long LOG_INTERVAL_SECONDS = 10;
  private static final int MAX_CAUSE_DEPTH = 16;

  /** How the process ends; tests record the call instead. */
  @FunctionalInterface
  public interface Exit {
    void exit(int status);
  }

  private static final Exit HALT = status -> Runtime.getRuntime().halt(status);
  private static volatile Exit exit = HALT;
  private static final AtomicBoolean dying = new AtomicBoolean();
  private static final LongAdder allocationFailures = new LongAdder();
  private static final AtomicLong lastAllocationLog = new AtomicLong(Long.MIN_VALUE);

  private FatalErrors() {}

  /**
   * Replaces how the process ends (tests) and forgets an earlier fatal error; returns the previous
   * exit. {@code null} restores the real one.
   */
  public static Exit install(@Nullable Exit replacement) {
    Exit previous = exit;
    exit = replacement == null ? HALT : replacement;
    dying.set(false);
    return previous;
  }

  /**
   * Called first in a data-plane {@code exceptionCaught}: an {@code Error} anywhere in {@code
   * cause}'s chain ends the process ({@link #die}), except a direct-memory refusal, which is
   * counted and left to the caller's usual close. Other exceptions pass untouched.
   *
   * @return true when the cause was a contained allocation failure
   */
  public static boolean check(Throwable cause) {
    Throwable t = cause;
    for (int depth = 0; t != null && depth < MAX_CAUSE_DEPTH; depth++, t = t.getCause()) {
      if (t instanceof OutOfDirectMemoryError) {
        allocationFailed(t);
        return true;
      }
      if (t instanceof Error) {
        die("an Error on " + Thread.currentThread().getName(), t);
        return false;
      }
    }
    return false;
  }

  /** Direct-memory refusals so far ({@code nodemesh_allocation_failures_total}). */
  public static long allocationFailures() {
    return allocationFailures.sum();
  }

  private static void allocationFailed(Throwable t) {
    allocationFailures.increment();
    long now = System.nanoTime();
    long last = lastAllocationLog.get();
    if ((last == Long.MIN_VALUE || now - last >= LOG_INTERVAL_SECONDS * 1_000_000_000L)
        && lastAllocationLog.compareAndSet(last, now)) {
      log.warn(
          "direct memory refused ({} so far), the connection asking is closed: {}",
          allocationFailures.sum(),
          t.getMessage());
    }
  }

  /**
   * Ends the process: logs {@code what} and {@code cause} at ERROR and on stderr (the logger may be
   * what failed), then exits with {@value #EXIT_STATUS}. Only the first call reports; later ones
   * (the other threads failing the same way) exit without repeating it.
   */
  public static void die(String what, @Nullable Throwable cause) {
    if (dying.compareAndSet(false, true)) {
      String line =
          "FATAL: "
              + what
              + (cause == null ? "" : ": " + cause)
              + "; the node proxy exits (status "
              + EXIT_STATUS
              + ") so that it is restarted rather than running with dead threads";
      try {
        System.err.println(line);
        log.error(line, cause);
      } catch (Throwable ignored) {
        // Out of memory while logging: exit anyway.
      }
    }
    exit.exit(EXIT_STATUS);
  }

  /** Ends the process for an exception that escaped a thread's run method. */
  public static Thread.UncaughtExceptionHandler uncaught() {
    return (thread, e) -> die("uncaught on " + thread.getName(), e);
  }

  /**
   * Netty's thread factory (daemon threads named {@code prefix-N-M}) whose threads end the process
   * when something escapes them.
   */
  public static ThreadFactory threads(String prefix) {
    return new DefaultThreadFactory(prefix, true) {
      @Override
      public Thread newThread(Runnable r) {
        Thread t = super.newThread(r);
        t.setUncaughtExceptionHandler(uncaught());
        return t;
      }
    };
  }
}
