package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** The rate-limit layer on an injected clock: tokens, the retry-after it answers, the count. */
class LocalRateLimitTest {
  private static final EnrolledPod POD =
      new EnrolledPod("uid", "client", "default", "/dev/null", List.of(), null);

  @Test
  void refusesOverTheLimitWithRetryAfterInWholeSeconds() {
    AtomicLong clock = new AtomicLong();
    ServiceTraffic st =
        Policies.traffic(
            Policies.policy(
                null,
                TrafficPolicy.Retry.DEFAULT,
                new TrafficPolicy.RateLimit(2, 1, Duration.ofMillis(1500), false, 10)),
            clock::get);
    assertEquals(0, LocalRateLimit.retryAfterSeconds(st, null, POD, "cluster.local"));
    assertEquals(0, LocalRateLimit.retryAfterSeconds(st, null, POD, "cluster.local"));
    assertEquals(2, LocalRateLimit.retryAfterSeconds(st, null, POD, "cluster.local"), "1.5 s up");
    assertEquals(1.0, st.meters().rateLimited().count());
    clock.addAndGet(1_500_000_000L);
    assertEquals(0, LocalRateLimit.retryAfterSeconds(st, null, POD, "cluster.local"));
  }

  @Test
  void noLimitNoToken() {
    ServiceTraffic st =
        Policies.traffic(Policies.policy(null, TrafficPolicy.Retry.DEFAULT, null), () -> 0L);
    for (int i = 0; i < 100; i++) {
      assertEquals(0, LocalRateLimit.retryAfterSeconds(st, null, POD, "cluster.local"));
    }
    assertEquals("default/client", LocalRateLimit.sourceIdentity(null, POD, "cluster.local"));
  }
}
