package dev.nodemesh.proxy.l7.resilience;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.TrafficPolicy;
import java.time.Duration;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class TokenBucketTest {
  private final AtomicLong now = new AtomicLong(1_000_000_000L);

  @Test
  void burstIsTheBucketSizeThenOneFillPerInterval() {
    TokenBucket b = new TokenBucket(10, 5, 1_000_000_000L, now::get);
    int allowed = 0;
    for (int i = 0; i < 100; i++) {
      allowed += b.tryAcquire() ? 1 : 0;
    }
    assertEquals(10, allowed);
    assertEquals(1_000_000_000L, b.nanosUntilToken());
    now.addAndGet(999_999_999L); // not a whole interval yet
    assertFalse(b.tryAcquire());
    assertEquals(1, b.nanosUntilToken());
    now.addAndGet(1);
    for (int i = 0; i < 5; i++) {
      assertTrue(b.tryAcquire(), "token " + i);
    }
    assertFalse(b.tryAcquire());
  }

  @Test
  void rateHoldsExactlyOverALongRunAndNeverExceedsTheBucket() {
    // 100 per second with a bucket of 100, offered 1000 requests per second for 60 s.
    TokenBucket b = new TokenBucket(100, 100, 1_000_000_000L, now::get);
    long allowed = 0;
    for (int ms = 0; ms < 60_000; ms++) {
      allowed += b.tryAcquire() ? 1 : 0;
      now.addAndGet(1_000_000L);
    }
    // The first 100 are the full bucket, then 100 per elapsed second (59 fills in the window).
    assertEquals(100 + 59 * 100, allowed);
    now.addAndGet(3_600_000_000_000L); // an hour idle: capped at maxTokens
    assertEquals(100, b.available());
  }

  @Test
  void perSourceBucketsAreSeparateAndBounded() {
    RateLimiter rl =
        new RateLimiter(
            new TrafficPolicy.RateLimit(2, 2, Duration.ofSeconds(1), true, 3), now::get);
    assertEquals(0, rl.acquire("a"));
    assertEquals(0, rl.acquire("a"));
    assertTrue(rl.acquire("a") > 0, "a's bucket is empty");
    assertEquals(0, rl.acquire("b"), "b has its own bucket");
    for (int i = 0; i < 100; i++) {
      rl.acquire("flood-" + i);
    }
    assertEquals(3, rl.buckets());
  }

  @Test
  void sharedBucketCountsEverySource() {
    RateLimiter rl =
        new RateLimiter(
            new TrafficPolicy.RateLimit(3, 1, Duration.ofSeconds(1), false, 10), now::get);
    assertEquals(0, rl.acquire("a"));
    assertEquals(0, rl.acquire("b"));
    assertEquals(0, rl.acquire("c"));
    assertEquals(1_000_000_000L, rl.acquire("d"));
    assertEquals(1, rl.buckets());
  }
}
