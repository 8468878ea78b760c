package dev.nodemesh.proxy.l7.resilience;

import dev.nodemesh.model.config.TrafficPolicy;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * Local rate limiting of one Service: one token bucket, or one per source identity when the policy
 * says {@code perSource}. Per-source buckets live in a bounded least-recently-used map ({@code
 * maxSources}), so a flood of identities cannot grow memory; an evicted source starts again with a
 * full bucket, which is the price of the bound.
 */
public final class RateLimiter {
  private final TrafficPolicy.RateLimit config;
  private final LongSupplier clock;
  private final @Nullable TokenBucket shared;
  private final LinkedHashMap<String, TokenBucket> bySource;

  public RateLimiter(TrafficPolicy.RateLimit config, LongSupplier nanoClock) {
    this.config = config;
    this.clock = nanoClock;
    this.shared = config.perSource() ? null : bucket();
    int max = config.maxSources();
    this.bySource =
        new LinkedHashMap<>(16, 0.75f, true) {
          @Override
          protected boolean removeEldestEntry(Map.Entry<String, TokenBucket> eldest) {
            return size() > max;
          }
        };
  }

  private TokenBucket bucket() {
    return new TokenBucket(
        config.maxTokens(), config.tokensPerFill(), config.fillInterval().toNanos(), clock);
  }

  /**
   * Takes a token for a request from {@code source}: 0 when allowed, else the nanoseconds until the
   * next token (for {@code retry-after}).
   */
  public long acquire(String source) {
    TokenBucket b = shared;
    if (b == null) {
      synchronized (bySource) {
        b = bySource.computeIfAbsent(source, s -> bucket());
      }
    }
    return b.tryAcquire() ? 0 : b.nanosUntilToken();
  }

  /** Buckets held (1 when shared). */
  public int buckets() {
    if (shared != null) {
      return 1;
    }
    synchronized (bySource) {
      return bySource.size();
    }
  }
}
