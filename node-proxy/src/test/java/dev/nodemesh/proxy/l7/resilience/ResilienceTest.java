package dev.nodemesh.proxy.l7.resilience;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.TrafficPolicy;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** Outlier detection, circuit breaker, retry budget and backoff, each on its own. */
class ResilienceTest {
  private static final long SECOND = 1_000_000_000L;

  private static TrafficPolicy.OutlierDetection od(int c5, int gw, int cf, int maxPercent) {
    return new TrafficPolicy.OutlierDetection(
        c5, gw, cf, Duration.ofSeconds(10), Duration.ofSeconds(25), maxPercent);
  }

  @Test
  void ejectsAfterConsecutive5xxAndReturnsAfterTheEjectionTime() {
    OutlierDetector d = new OutlierDetector(od(3, 0, 0, 100));
    List<EndpointStats> all = endpoints(4);
    EndpointStats e = all.get(0);
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0));
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0));
    assertFalse(d.record(e, OutlierDetector.Outcome.SUCCESS, all, 0)); // resets the count
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0));
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0));
    assertTrue(d.record(e, OutlierDetector.Outcome.GATEWAY_ERROR, all, 0));
    assertTrue(OutlierDetector.isEjected(e, 10 * SECOND - 1));
    assertFalse(OutlierDetector.isEjected(e, 10 * SECOND), "back after baseEjectionTime");
    // Ejected a second time: twice as long; a third: capped at maxEjectionTime (25 s).
    for (int i = 0; i < 3; i++) {
      d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 100 * SECOND);
    }
    assertTrue(OutlierDetector.isEjected(e, 119 * SECOND));
    assertFalse(OutlierDetector.isEjected(e, 120 * SECOND));
    for (int i = 0; i < 3; i++) {
      d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 200 * SECOND);
    }
    assertTrue(OutlierDetector.isEjected(e, 224 * SECOND));
    assertFalse(OutlierDetector.isEjected(e, 225 * SECOND));
    assertEquals(3, OutlierDetector.ejections(e));
  }

  @Test
  void gatewayAndConnectCountersOnlyCountTheirKind() {
    OutlierDetector d = new OutlierDetector(od(0, 2, 0, 100));
    List<EndpointStats> all = endpoints(2);
    EndpointStats e = all.get(0);
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0)); // 500: not gateway
    assertFalse(d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0));
    assertFalse(d.record(e, OutlierDetector.Outcome.GATEWAY_ERROR, all, 0));
    assertTrue(d.record(e, OutlierDetector.Outcome.CONNECT_FAILURE, all, 0));
    OutlierDetector connect = new OutlierDetector(od(0, 0, 2, 100));
    EndpointStats f = all.get(1);
    assertFalse(connect.record(f, OutlierDetector.Outcome.CONNECT_FAILURE, all, 0));
    assertFalse(connect.record(f, OutlierDetector.Outcome.GATEWAY_ERROR, all, 0)); // resets
    assertFalse(connect.record(f, OutlierDetector.Outcome.CONNECT_FAILURE, all, 0));
    assertTrue(connect.record(f, OutlierDetector.Outcome.CONNECT_FAILURE, all, 0));
  }

  @Test
  void maxEjectionPercentBoundsHowManyAreOut() {
    OutlierDetector d = new OutlierDetector(od(1, 0, 0, 50));
    List<EndpointStats> all = endpoints(4);
    int ejected = 0;
    for (EndpointStats e : all) {
      ejected += d.record(e, OutlierDetector.Outcome.SERVER_ERROR, all, 0) ? 1 : 0;
    }
    assertEquals(2, ejected);
    OutlierDetector none = new OutlierDetector(od(1, 0, 0, 0));
    List<EndpointStats> fresh = endpoints(3);
    assertFalse(none.record(fresh.get(0), OutlierDetector.Outcome.SERVER_ERROR, fresh, 0));
  }

  @Test
  void circuitBreakerCapsRequestsPendingAndConnectionsAndRecovers() {
    CircuitBreaker cb = new CircuitBreaker(2, 1, 3);
    assertTrue(cb.tryAdmit());
    assertFalse(cb.tryAdmit(), "one pending already");
    cb.pendingEnded();
    cb.connectionTaken();
    assertTrue(cb.tryAdmit());
    cb.pendingEnded();
    cb.connectionTaken();
    assertFalse(cb.tryAdmit(), "two connections busy");
    assertEquals(2, cb.requests());
    cb.connectionReleased();
    assertTrue(cb.tryAdmit());
    cb.pendingEnded();
    assertFalse(cb.tryAdmit(), "three requests in flight");
    cb.requestEnded();
    assertTrue(cb.tryAdmit(), "closed again once a request ended");
    assertEquals(3, cb.requests());
    assertEquals(1, cb.pending());
  }

  @Test
  void retryBudgetIsAPercentageOfRequestsInFlightWithAFloor() {
    RetryBudget b = new RetryBudget(20, 2);
    for (int i = 0; i < 50; i++) {
      b.requestStarted();
    }
    int granted = 0;
    for (int i = 0; i < 50; i++) {
      granted += b.tryStartRetry() ? 1 : 0;
    }
    assertEquals(10, granted); // 20 % of 50
    b.retryEnded();
    assertTrue(b.tryStartRetry());
    RetryBudget floor = new RetryBudget(20, 2);
    floor.requestStarted();
    assertTrue(floor.tryStartRetry());
    assertTrue(floor.tryStartRetry());
    assertFalse(floor.tryStartRetry(), "1 request in flight: the floor of 2 applies");
    RetryBudget off = new RetryBudget(0, 0);
    off.requestStarted();
    assertFalse(off.tryStartRetry());
  }

  @Test
  void backoffIsExponentialWithFullJitterAndCapped() {
    SplittableRandom r = new SplittableRandom(7);
    long base = 10_000_000L;
    long max = 80_000_000L;
    for (int retry = 0; retry < 8; retry++) {
      long ceiling = Math.min(max, base << retry);
      long lo = Long.MAX_VALUE;
      long hi = 0;
      double sum = 0;
      int n = 20_000;
      for (int i = 0; i < n; i++) {
        long d = Backoff.delayNanos(base, max, retry, r);
        assertTrue(d >= 0 && d <= ceiling, retry + ": " + d);
        lo = Math.min(lo, d);
        hi = Math.max(hi, d);
        sum += d;
      }
      // Full jitter: uniform over [0, ceiling], so the mean is about half the ceiling.
      assertEquals(ceiling / 2.0, sum / n, ceiling * 0.03);
      assertTrue(lo < ceiling * 0.01 && hi > ceiling * 0.99);
    }
    assertEquals(0, Backoff.delayNanos(0, 0, 3, r));
    assertTrue(Backoff.delayNanos(base, max, 1_000, r) <= max, "a huge retry count stays capped");
  }

  private static List<EndpointStats> endpoints(int n) {
    List<EndpointStats> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(new EndpointStats("e" + i));
    }
    return out;
  }
}
