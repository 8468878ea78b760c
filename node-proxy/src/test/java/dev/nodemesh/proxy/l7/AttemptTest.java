package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.proxy.l7.resilience.CircuitBreaker;
import dev.nodemesh.proxy.l7.resilience.OutlierDetector;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** A try's claims on the breaker, endpoint and budget: taken, and each given back once. */
class AttemptTest {
  private final AtomicLong clock = new AtomicLong();

  private ServiceTraffic traffic(int maxConnections, int maxPending, int maxRequests) {
    return Policies.traffic(
        Policies.policy(
            new TrafficPolicy.CircuitBreaker(maxConnections, maxPending, maxRequests),
            TrafficPolicy.Retry.DEFAULT,
            null),
        clock::get);
  }

  @Test
  void theBreakerAdmitsUpToItsCapsAndCountsTheOverflow() {
    ServiceTraffic st = traffic(10, 10, 2);
    Attempt a = Attempt.admit(st, "10.1.0.1:80");
    Attempt b = Attempt.admit(st, "10.1.0.1:80");
    assertNotNull(a);
    assertNotNull(b);
    assertNull(Attempt.admit(st, "10.1.0.1:80"), "maxRequests reached");
    assertEquals(1.0, st.meters().overflows().count());
    assertEquals(2, st.stats("10.1.0.1:80").active());
    a.end();
    assertNotNull(Attempt.admit(st, "10.1.0.1:80"), "a try's end makes room");
  }

  @Test
  void everyClaimIsGivenBackOnceWhateverThePath() {
    ServiceTraffic st = traffic(10, 10, 10);
    CircuitBreaker cb = st.breaker();
    Attempt a = Attempt.admit(st, "e");
    assertNotNull(a);
    st.budget().requestStarted();
    assertEquals(true, st.budget().tryStartRetry());
    a.holdsRetry(true);
    assertEquals(1, cb.pending());
    a.upstreamReady();
    a.upstreamReady();
    assertEquals(0, cb.pending());
    a.connectionTaken(false);
    assertEquals(1, cb.connections());
    a.end();
    a.end();
    assertEquals(0, cb.requests());
    assertEquals(0, cb.connections());
    assertEquals(0, st.budget().retriesInFlight());
    assertEquals(0, st.stats("e").active());
    // Ended while still waiting for its upstream: pending given back by the end, and the late
    // upstream changes nothing.
    Attempt waiting = Attempt.admit(st, "e");
    assertNotNull(waiting);
    waiting.end();
    waiting.upstreamReady();
    waiting.connectionTaken(false);
    assertEquals(0, cb.pending());
    assertEquals(0, cb.connections());
    Attempt h2 = Attempt.admit(st, "e");
    assertNotNull(h2);
    h2.connectionTaken(true);
    assertEquals(0, cb.connections(), "an HTTP/2 stream is not a connection of its own");
    h2.end();
  }

  @Test
  void theOutcomeIsRecordedOnceWithTheLatencyOnTheInjectedClock() {
    ServiceTraffic st = traffic(10, 10, 10);
    clock.set(1_000);
    Attempt a = Attempt.admit(st, "e");
    assertNotNull(a);
    clock.set(5_001_000);
    a.outcome(OutlierDetector.Outcome.SUCCESS, true);
    a.outcome(OutlierDetector.Outcome.SERVER_ERROR, true);
    assertEquals(5_000_000.0, st.stats("e").ewmaNanos(), 1.0);
    a.end();
  }
}
