package dev.nodemesh.proxy.budget;

import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.ffi.NativeException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The process's open-file limit ({@code RLIMIT_NOFILE}), raised at start from the soft to the hard
 * limit (no privilege is needed for that; the hard limit is the operator's choice, e.g. the
 * container runtime's {@code LimitNOFILE}). Every relayed connection costs the proxy two fds, so
 * the soft default of 1024 would refuse connections long before memory runs out. The JVM may have
 * raised it already ({@code -XX:+MaxFDLimit}); then this only reads it.
 */
public final class FdLimit {
  private static final Logger log = LoggerFactory.getLogger(FdLimit.class);

  /** What is assumed when the limit cannot be read (not Linux, no libc). */
  static final long FALLBACK = 1024;

  private FdLimit() {}

  /** Raises the soft limit to the hard one; returns the soft limit in force afterwards. */
  public static long raiseToHard() {
    try {
      long[] limits = Native.getrlimit(Native.RLIMIT_NOFILE);
      long soft = limits[0];
      long hard = limits[1];
      if (soft < hard) {
        Native.setrlimit(Native.RLIMIT_NOFILE, hard, hard);
        log.info("open-file limit raised from {} to {} (the hard limit)", soft, hard);
        return hard;
      }
      log.info("open-file limit {} (soft = hard)", soft);
      return soft;
    } catch (NativeException | RuntimeException | LinkageError e) {
      log.warn("cannot read or raise the open-file limit, assuming {}: {}", FALLBACK, e.toString());
      return FALLBACK;
    }
  }

  /** The soft limit in force now, or {@value #FALLBACK} when it cannot be read. */
  public static long current() {
    try {
      return Native.getrlimit(Native.RLIMIT_NOFILE)[0];
    } catch (NativeException | RuntimeException | LinkageError e) {
      return FALLBACK;
    }
  }

  /**
   * The default per-pod connection budget for a process allowed {@code nofile} fds: with 1,024 fds
   * kept back for the proxy itself (listeners, pools, tunnels, admin) and two fds per relayed
   * connection, eight pods at their full budget still fit, so one hostile pod can never take more
   * than an eighth; at least 64.
   */
  public static int defaultBudget(long nofile) {
    long budget = (nofile - 1024) / 2 / 8;
    return (int) Math.max(64, Math.min(budget, Integer.MAX_VALUE));
  }
}
