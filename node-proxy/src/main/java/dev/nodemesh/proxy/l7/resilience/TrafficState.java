package dev.nodemesh.proxy.l7.resilience;

import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.Collections;
import java.util.Map;
import java.util.Objects;
import java.util.WeakHashMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * The resilience state of one proxy: a {@link ServiceTraffic} per Service, made on first use with
 * the Service's TrafficPolicy (or the defaults) and replaced when that policy changes. Metrics
 * (Prometheus names): {@code nodemesh_http_circuit_breaker_overflows_total}, {@code
 * nodemesh_http_outlier_ejections_total}, {@code nodemesh_http_rate_limited_total}, {@code
 * nodemesh_http_retries_total} and {@code nodemesh_http_retry_budget_exhausted_total}, each with
 * {@code destination_service} (name.namespace, from config).
 */
public final class TrafficState {
  private static final Map<MeterRegistry, TrafficState> BY_REGISTRY =
      Collections.synchronizedMap(new WeakHashMap<>());

  private final MeterRegistry registry;
  private final LongSupplier clock;
  private final ConcurrentHashMap<NamespacedName, ServiceTraffic> services =
      new ConcurrentHashMap<>();
  private final ConcurrentHashMap<NamespacedName, ServiceTraffic.Meters> meters =
      new ConcurrentHashMap<>();

  public TrafficState(MeterRegistry registry, LongSupplier nanoClock) {
    this.registry = registry;
    this.clock = nanoClock;
  }

  /** The state of the proxy whose metrics go to {@code registry} (one per proxy). */
  public static TrafficState of(MeterRegistry registry) {
    return BY_REGISTRY.computeIfAbsent(registry, r -> new TrafficState(r, System::nanoTime));
  }

  /** The Service's state under {@code policy} (null: the defaults). */
  public ServiceTraffic service(NamespacedName service, @Nullable TrafficPolicy policy) {
    ServiceTraffic current = services.get(service);
    // Per request: the same policy object as last time (or the defaults again) needs no equals.
    if (current != null && (policy != null ? current.policy() == policy : current.defaults())) {
      return current;
    }
    TrafficPolicy effective =
        policy != null
            ? policy
            : new TrafficPolicy(
                "",
                service.namespace(),
                service.name(),
                TrafficPolicy.LoadBalancer.DEFAULT,
                null,
                null,
                TrafficPolicy.Retry.DEFAULT,
                null);
    if (current != null && current.policy().equals(effective)) {
      return current;
    }
    return services.compute(
        service,
        (k, old) ->
            old != null && old.policy().equals(effective)
                ? old
                : new ServiceTraffic(effective, policy == null, clock, meters(k)));
  }

  private ServiceTraffic.Meters meters(NamespacedName service) {
    return meters.computeIfAbsent(
        service,
        s -> {
          String label = s.name() + "." + s.namespace();
          return new ServiceTraffic.Meters(
              counter(
                  "nodemesh.http.circuit.breaker.overflows",
                  label,
                  "Requests refused 503 by a circuit breaker"),
              counter(
                  "nodemesh.http.outlier.ejections",
                  label,
                  "Endpoints ejected by outlier detection"),
              counter(
                  "nodemesh.http.rate.limited",
                  label,
                  "Requests refused 429 by a local rate limit"),
              counter("nodemesh.http.retries", label, "Retries sent"),
              counter(
                  "nodemesh.http.retry.budget.exhausted",
                  label,
                  "Retries not sent because the retry budget was spent"));
        });
  }

  private Counter counter(String name, String service, String description) {
    return Counter.builder(name)
        .description(description)
        .tag("destination_service", Objects.requireNonNull(service))
        .register(registry);
  }
}
