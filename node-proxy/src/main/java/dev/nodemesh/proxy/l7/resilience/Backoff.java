package dev.nodemesh.proxy.l7.resilience;

import java.util.random.RandomGenerator;

/**
 * Exponential backoff with full jitter (AWS's "full jitter"): uniform in [0, min(max, base·2ⁿ)].
 */
public final class Backoff {
  private Backoff() {}

  /**
   * @param retry 0 for the first retry
   * @return the delay in nanoseconds before that retry
   */
  public static long delayNanos(long baseNanos, long maxNanos, int retry, RandomGenerator random) {
    if (baseNanos <= 0 || maxNanos <= 0) {
      return 0;
    }
    int shift = Math.min(Math.max(retry, 0), 30);
    long ceiling =
        baseNanos > (maxNanos >> shift) ? maxNanos : Math.min(maxNanos, baseNanos << shift);
    return random.nextLong(ceiling + 1);
  }
}
