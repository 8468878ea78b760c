package dev.nodemesh.proxy.l7.resilience;

import dev.nodemesh.model.config.TrafficPolicy;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Envoy-style circuit breaking of one upstream cluster (a Service): caps on requests in flight,
 * requests waiting for an upstream connection or stream, and upstream connections busy with a
 * request. A request over a cap is not queued: the proxy answers 503 at once (flag {@code UO}), so
 * an overloaded Service sheds load instead of collecting it. It "closes" again by itself as soon as
 * requests finish. Shared by every event loop.
 */
public final class CircuitBreaker {
  private final int maxConnections;
  private final int maxPending;
  private final int maxRequests;
  private final AtomicInteger connections = new AtomicInteger();
  private final AtomicInteger pending = new AtomicInteger();
  private final AtomicInteger requests = new AtomicInteger();

  public CircuitBreaker(TrafficPolicy.CircuitBreaker c) {
    this(c.maxConnections(), c.maxPendingRequests(), c.maxRequests());
  }

  public CircuitBreaker(int maxConnections, int maxPending, int maxRequests) {
    this.maxConnections = maxConnections;
    this.maxPending = maxPending;
    this.maxRequests = maxRequests;
  }

  /**
   * Admits one try that still needs an upstream: counts it as a request in flight and as pending.
   * False (nothing counted) when either cap, or the connection cap, is reached.
   */
  public boolean tryAdmit() {
    if (connections.get() >= maxConnections) {
      return false;
    }
    if (!increment(requests, maxRequests)) {
      return false;
    }
    if (!increment(pending, maxPending)) {
      requests.decrementAndGet();
      return false;
    }
    return true;
  }

  /** The admitted try has its upstream (or gave up waiting). */
  public void pendingEnded() {
    pending.decrementAndGet();
  }

  /** The admitted try's upstream is a connection of its own (HTTP/1.1). */
  public void connectionTaken() {
    connections.incrementAndGet();
  }

  public void connectionReleased() {
    connections.decrementAndGet();
  }

  public void requestEnded() {
    requests.decrementAndGet();
  }

  private static boolean increment(AtomicInteger counter, int max) {
    while (true) {
      int v = counter.get();
      if (v >= max) {
        return false;
      }
      if (counter.compareAndSet(v, v + 1)) {
        return true;
      }
    }
  }

  public int requests() {
    return requests.get();
  }

  public int pending() {
    return pending.get();
  }

  public int connections() {
    return connections.get();
  }
}
