package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.time.Duration;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/** TrafficPolicy state for the layers' unit tests: a Service's, with its own meters and clock. */
final class Policies {
  private Policies() {}

  static TrafficPolicy policy(
      TrafficPolicy.@Nullable CircuitBreaker breaker,
      TrafficPolicy.Retry retry,
      TrafficPolicy.@Nullable RateLimit rateLimit) {
    return new TrafficPolicy(
        "p", "default", "web", TrafficPolicy.LoadBalancer.DEFAULT, breaker, null, retry, rateLimit);
  }

  /** A retry policy: budget percent, minimum retries in flight, backoff base and max in ms. */
  static TrafficPolicy.Retry retry(int percent, int min, long baseMs, long maxMs) {
    return new TrafficPolicy.Retry(
        percent, min, Duration.ofMillis(baseMs), Duration.ofMillis(maxMs), false);
  }

  static ServiceTraffic traffic(TrafficPolicy policy, LongSupplier clock) {
    SimpleMeterRegistry r = new SimpleMeterRegistry();
    return new ServiceTraffic(
        policy,
        clock,
        new ServiceTraffic.Meters(
            r.counter("overflows"),
            r.counter("ejections"),
            r.counter("rateLimited"),
            r.counter("retries"),
            r.counter("budget")));
  }
}
