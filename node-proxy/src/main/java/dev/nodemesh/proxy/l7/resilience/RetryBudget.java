package dev.nodemesh.proxy.l7.resilience;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Envoy's retry budget: retries in flight to a Service may be at most {@code percent} of the
 * requests in flight to it, or {@code minConcurrency}, whichever is more. Under an outage every
 * request fails and wants a retry; the budget caps the extra load at a fraction, so retries cannot
 * multiply an overload (a retry storm). Counters are shared by every event loop.
 */
public final class RetryBudget {
  private final int percent;
  private final int minConcurrency;
  private final AtomicInteger requests = new AtomicInteger();
  private final AtomicInteger retries = new AtomicInteger();

  public RetryBudget(int percent, int minConcurrency) {
    this.percent = percent;
    this.minConcurrency = minConcurrency;
  }

  public void requestStarted() {
    requests.incrementAndGet();
  }

  public void requestEnded() {
    requests.decrementAndGet();
  }

  /** Takes a retry from the budget; false when it is spent (then the retry must not happen). */
  public boolean tryStartRetry() {
    while (true) {
      int r = retries.get();
      long allowed = Math.max(minConcurrency, (long) requests.get() * percent / 100);
      if (r >= allowed) {
        return false;
      }
      if (retries.compareAndSet(r, r + 1)) {
        return true;
      }
    }
  }

  public void retryEnded() {
    retries.decrementAndGet();
  }

  public int requestsInFlight() {
    return requests.get();
  }

  public int retriesInFlight() {
    return retries.get();
  }
}
