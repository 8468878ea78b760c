package dev.nodemesh.proxy.xds;

import java.util.function.DoubleSupplier;

/**
 * Reconnect delays: exponential from {@code initialNanos} up to {@code maxNanos}, each multiplied
 * by a random factor in [0.8, 1.2) (gRPC's connection-backoff spec) so that a thousand nodes losing
 * the control plane together do not come back in one wave. Not thread-safe: the client calls it
 * from its serialized executor. The random source is injected so tests know every delay.
 */
public final class Backoff {
  private static final double MULTIPLIER = 1.6;
  private static final double JITTER = 0.2;

  private final long initialNanos;
  private final long maxNanos;
  private final DoubleSupplier random;
  private double current;

  /**
   * @param random values in [0, 1), e.g. {@code ThreadLocalRandom.current()::nextDouble}
   */
  public Backoff(long initialNanos, long maxNanos, DoubleSupplier random) {
    if (initialNanos <= 0 || maxNanos < initialNanos) {
      throw new IllegalArgumentException("need 0 < initial <= max");
    }
    this.initialNanos = initialNanos;
    this.maxNanos = maxNanos;
    this.random = random;
    this.current = initialNanos;
  }

  /** The delay before the next attempt; each call grows the base delay until the maximum. */
  public long nextDelayNanos() {
    double base = current;
    current = Math.min(current * MULTIPLIER, maxNanos);
    double factor = 1 - JITTER + 2 * JITTER * random.getAsDouble();
    return (long) (base * factor);
  }

  /** After a successful exchange: the next failure starts from the initial delay again. */
  public void reset() {
    current = initialNanos;
  }
}
