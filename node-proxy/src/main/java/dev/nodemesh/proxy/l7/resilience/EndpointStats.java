package dev.nodemesh.proxy.l7.resilience;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * What the balancer and outlier detection know about one endpoint of one Service: requests in
 * flight, the peak-EWMA latency (Finagle/Linkerd: a sample above the average replaces it at once, a
 * lower one is blended in with a weight that decays with the time since the last sample, {@link
 * #DECAY_NANOS}), and the outlier state. Shared by every event loop; the EWMA and outlier fields
 * are guarded by this object's lock (a few arithmetic operations per response).
 */
public final class EndpointStats {
  /** Time constant of the EWMA's decay (Linkerd's default). */
  public static final long DECAY_NANOS = 10_000_000_000L;

  /** Cost of an endpoint with no sample yet: optimistic, so a new endpoint is tried soon. */
  private static final double FLOOR_NANOS = 1_000;

  final String key;
  private final AtomicInteger active = new AtomicInteger();
  private double ewmaNanos;
  private long lastSample;
  private boolean sampled;

  // Outlier detection, guarded by this.
  int consecutive5xx;
  int consecutiveGateway;
  int consecutiveConnect;
  int ejections;
  long ejectedUntil;
  boolean ejected;

  public EndpointStats(String key) {
    this.key = key;
  }

  public String key() {
    return key;
  }

  public int active() {
    return active.get();
  }

  public void started() {
    active.incrementAndGet();
  }

  public void ended() {
    active.decrementAndGet();
  }

  /** Records one response latency. */
  public synchronized void observe(long rttNanos, long nowNanos) {
    if (!sampled || rttNanos > ewmaNanos) {
      ewmaNanos = rttNanos;
    } else {
      long elapsed = Math.max(0, nowNanos - lastSample);
      double w = Math.exp(-(double) elapsed / DECAY_NANOS);
      ewmaNanos = ewmaNanos * w + rttNanos * (1 - w);
    }
    sampled = true;
    lastSample = nowNanos;
  }

  public synchronized double ewmaNanos() {
    return ewmaNanos;
  }

  /** Peak-EWMA cost: latency times (requests in flight + 1). Lower is better. */
  public double peakEwmaCost() {
    double latency;
    synchronized (this) {
      latency = Math.max(FLOOR_NANOS, ewmaNanos);
    }
    return latency * (active.get() + 1);
  }

  public synchronized boolean isEjected() {
    return ejected;
  }

  @Override
  public String toString() {
    return key;
  }
}
