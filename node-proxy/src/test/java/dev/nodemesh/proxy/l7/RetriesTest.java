package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import io.netty.handler.codec.http.HttpMethod;
import java.time.Duration;
import java.util.Set;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

/** The retry layer without a socket: attempts, retryable failures and codes, budget, backoff. */
class RetriesTest {
  private static final HttpRoute.Retry TWO_ON_503 =
      new HttpRoute.Retry(2, Set.of(503), Duration.ZERO);

  /** The top of the jitter range: the backoff's ceiling. */
  private static final RandomGenerator CEILING =
      new RandomGenerator() {
        @Override
        public long nextLong() {
          return 0;
        }

        @Override
        public long nextLong(long bound) {
          return bound - 1;
        }
      };

  private static ServiceTraffic traffic(int percent, int min) {
    return Policies.traffic(
        Policies.policy(null, Policies.retry(percent, min, 25, 250), null), () -> 0L);
  }

  @Test
  void attemptsAreSpentOneRetryAtATimeAndOnlyOnRetryableOutcomes() {
    ServiceTraffic st = traffic(100, 10);
    Retries r = new Retries(st, TWO_ON_503, HttpMethod.GET, false);
    assertEquals(1, st.budget().requestsInFlight());
    assertFalse(r.startTry(), "a first try holds no retry slot");
    assertTrue(r.mayFollow());
    assertFalse(r.retriesStatus(500, true), "500 is not among the codes");
    assertFalse(r.retriesStatus(503, false), "a body that cannot be replayed is not retried");
    assertTrue(r.retriesStatus(503, true));
    assertEquals(1, st.budget().retriesInFlight(), "the slot is reserved at the decision");
    r.nextBackoffNanos(CEILING);
    assertTrue(r.startTry(), "the retry holds the slot");
    st.budget().retryEnded(); // what the try's Attempt does when it ends
    assertTrue(r.retriesFailure(true));
    r.nextBackoffNanos(CEILING);
    r.startTry();
    st.budget().retryEnded();
    assertFalse(r.mayFollow());
    assertFalse(r.retriesFailure(true), "both retries spent");
    assertEquals(3, r.tries());
    assertEquals(2.0, st.meters().retries().count());
    r.end();
    r.end();
    assertEquals(0, st.budget().requestsInFlight(), "counted once, ended once");
  }

  @Test
  void nonIdempotentMethodsAreRetriedOnlyWhenAllowed() {
    ServiceTraffic st = traffic(100, 10);
    assertEquals(0, new Retries(st, TWO_ON_503, HttpMethod.POST, false).left());
    assertEquals(2, new Retries(st, TWO_ON_503, HttpMethod.POST, true).left());
    assertEquals(2, new Retries(st, TWO_ON_503, HttpMethod.PUT, false).left());
    assertEquals(0, new Retries(st, null, HttpMethod.GET, false).left(), "no retry rule");
  }

  @Test
  void aSpentBudgetRefusesTheRetryAndCountsIt() {
    ServiceTraffic st = traffic(0, 1); // one retry in flight at most
    Retries a = new Retries(st, TWO_ON_503, HttpMethod.GET, false);
    Retries b = new Retries(st, TWO_ON_503, HttpMethod.GET, false);
    a.startTry();
    b.startTry();
    assertTrue(a.retriesFailure(true));
    assertTrue(a.retriesFailure(true), "a reservation already held is not taken twice");
    assertFalse(b.retriesFailure(true), "the budget is spent");
    assertEquals(1.0, st.meters().budget().count());
    a.end(); // gives the unused reservation back
    assertTrue(b.retriesFailure(true));
    b.stop();
    assertEquals(0, st.budget().retriesInFlight(), "stop gives the reservation back");
    assertFalse(b.retriesFailure(true));
    b.end();
    assertEquals(0, st.budget().requestsInFlight());
  }

  @Test
  void backoffDoublesFromTheRouteOrPolicyBaseUpToTheCap() {
    ServiceTraffic st =
        Policies.traffic(Policies.policy(null, Policies.retry(100, 10, 25, 60), null), () -> 0L);
    Retries policyBase =
        new Retries(st, new HttpRoute.Retry(5, Set.of(), Duration.ZERO), HttpMethod.GET, false);
    long[] ceilings = new long[4];
    for (int i = 0; i < 4; i++) {
      policyBase.startTry();
      ceilings[i] = policyBase.nextBackoffNanos(CEILING);
    }
    long ms = 1_000_000;
    assertEquals(25 * ms, ceilings[0]);
    assertEquals(50 * ms, ceilings[1]);
    assertEquals(60 * ms, ceilings[2], "capped by backoffMax");
    assertEquals(60 * ms, ceilings[3]);
    Retries routeBase =
        new Retries(
            st, new HttpRoute.Retry(1, Set.of(), Duration.ofMillis(100)), HttpMethod.GET, false);
    routeBase.startTry();
    assertEquals(100 * ms, routeBase.nextBackoffNanos(CEILING), "a base above the cap wins");
  }
}
