package dev.nodemesh.proxy.l7.resilience;

import java.util.function.LongSupplier;

/**
 * A token bucket: starts full with {@code maxTokens}, gains {@code tokensPerFill} every {@code
 * fillIntervalNanos} (whole intervals only, so the count over a window is exact), never above
 * {@code maxTokens}. Thread-safe (one short lock per request); the clock is a parameter so tests
 * drive time by hand.
 */
public final class TokenBucket {
  private final long maxTokens;
  private final long tokensPerFill;
  private final long fillIntervalNanos;
  private final LongSupplier clock;
  private long tokens;
  private long lastFill;

  public TokenBucket(
      long maxTokens, long tokensPerFill, long fillIntervalNanos, LongSupplier nanoClock) {
    if (maxTokens < 1 || tokensPerFill < 1 || fillIntervalNanos < 1) {
      throw new IllegalArgumentException("token bucket parameters must be positive");
    }
    this.maxTokens = maxTokens;
    this.tokensPerFill = tokensPerFill;
    this.fillIntervalNanos = fillIntervalNanos;
    this.clock = nanoClock;
    this.tokens = maxTokens;
    this.lastFill = nanoClock.getAsLong();
  }

  /** Takes one token; false when the bucket is empty. */
  public synchronized boolean tryAcquire() {
    refill();
    if (tokens > 0) {
      tokens--;
      return true;
    }
    return false;
  }

  /** Nanoseconds until the next token arrives (0 when one is there now). */
  public synchronized long nanosUntilToken() {
    refill();
    if (tokens > 0) {
      return 0;
    }
    return Math.max(1, lastFill + fillIntervalNanos - clock.getAsLong());
  }

  /** Tokens available now. */
  public synchronized long available() {
    refill();
    return tokens;
  }

  private void refill() {
    long now = clock.getAsLong();
    long intervals = (now - lastFill) / fillIntervalNanos;
    if (intervals <= 0) {
      return;
    }
    lastFill += intervals * fillIntervalNanos;
    long add = intervals > maxTokens ? maxTokens : intervals * tokensPerFill;
    tokens = Math.min(maxTokens, tokens + add);
  }
}
