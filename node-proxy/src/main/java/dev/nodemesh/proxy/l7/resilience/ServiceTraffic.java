package dev.nodemesh.proxy.l7.resilience;

import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import io.micrometer.core.instrument.Counter;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.LongSupplier;
import java.util.random.RandomGenerator;
import org.jspecify.annotations.Nullable;

/**
 * Everything the L7 proxy tracks for one Service under one {@link TrafficPolicy} (or the defaults):
 * per-endpoint statistics, the ring, the breaker, outlier detection, the retry budget and the rate
 * limiter. One per Service per proxy, shared by its event loops; replaced whole when the policy
 * changes (in-flight requests finish against the object they started with).
 */
public final class ServiceTraffic {
  /**
   * The Service's endpoints as one pick sees them: those of {@code from} (the snapshot's endpoint
   * list) with an address of the dialled VIP's family ({@code ipv4}) and a target port on {@code
   * port}, with their addresses and statistics keys (IP:port). Made once per snapshot, port and
   * family instead of per request ({@link #candidates}); immutable.
   */
  public record Candidates(
      List<Workload> from,
      ServicePort port,
      boolean ipv4,
      List<Workload> endpoints,
      List<InetSocketAddress> addresses,
      List<String> keys) {}

  /** Counters of one Service (all {@code destination_service}-labelled). */
  public record Meters(
      Counter overflows, Counter ejections, Counter rateLimited, Counter retries, Counter budget) {}

  private final TrafficPolicy policy;
  private final LongSupplier clock;
  private final Meters meters;
  private final ConcurrentHashMap<String, EndpointStats> stats = new ConcurrentHashMap<>();
  private final AtomicLong roundRobin = new AtomicLong();
  private final @Nullable CircuitBreaker breaker;
  private final @Nullable OutlierDetector outliers;
  private final RetryBudget budget;
  private final @Nullable RateLimiter rateLimiter;
  private volatile @Nullable RingHash ring;
  private volatile @Nullable Candidates candidates;
  private final boolean defaults;

  public ServiceTraffic(TrafficPolicy policy, LongSupplier nanoClock, Meters meters) {
    this(policy, false, nanoClock, meters);
  }

  /**
   * @param defaults {@code policy} is the defaults made up for a Service that has no TrafficPolicy
   */
  public ServiceTraffic(
      TrafficPolicy policy, boolean defaults, LongSupplier nanoClock, Meters meters) {
    this.policy = policy;
    this.defaults = defaults;
    this.clock = nanoClock;
    this.meters = meters;
    this.breaker =
        policy.circuitBreaker() == null ? null : new CircuitBreaker(policy.circuitBreaker());
    this.outliers =
        policy.outlierDetection() == null ? null : new OutlierDetector(policy.outlierDetection());
    this.budget =
        new RetryBudget(policy.retry().budgetPercent(), policy.retry().minRetryConcurrency());
    this.rateLimiter =
        policy.rateLimit() == null ? null : new RateLimiter(policy.rateLimit(), nanoClock);
  }

  public TrafficPolicy policy() {
    return policy;
  }

  /** True when {@link #policy} is the defaults of a Service that has no TrafficPolicy. */
  public boolean defaults() {
    return defaults;
  }

  public Meters meters() {
    return meters;
  }

  public @Nullable CircuitBreaker breaker() {
    return breaker;
  }

  public RetryBudget budget() {
    return budget;
  }

  public @Nullable RateLimiter rateLimiter() {
    return rateLimiter;
  }

  public long now() {
    return clock.getAsLong();
  }

  /**
   * The candidates resolved last (by the L7 picker, from any event loop), or null; the caller
   * checks that they were made from what it has now.
   */
  public @Nullable Candidates candidates() {
    return candidates;
  }

  /** Remembers {@code c} for the next pick (a racing loop's may win: both are correct). */
  public void candidates(Candidates c) {
    candidates = c;
  }

  /** The statistics of the endpoint known by {@code key} (IP:port). */
  public EndpointStats stats(String key) {
    return stats.computeIfAbsent(key, EndpointStats::new);
  }

  /** Records a try's outcome for outlier detection; counts an ejection it causes. */
  public void record(EndpointStats e, OutlierDetector.Outcome outcome) {
    OutlierDetector od = outliers;
    if (od == null) {
      return;
    }
    Collection<EndpointStats> all = currentStats();
    if (od.record(e, outcome, all, clock.getAsLong())) {
      meters.ejections().increment();
    }
  }

  private Collection<EndpointStats> currentStats() {
    RingHash r = ring;
    if (r == null) {
      return stats.values();
    }
    List<EndpointStats> out = new ArrayList<>(r.keys().size());
    for (String k : r.keys()) {
      out.add(stats(k));
    }
    return out;
  }

  /**
   * Picks one of {@code endpoints} (the Service's usable endpoints, with their keys): ejected ones
   * are skipped unless all are (then ejection is ignored, as Envoy's panic mode), {@code exclude}
   * (the endpoint a failed try went to) too unless it is the only one left; then the caller's node,
   * else its zone, is preferred when the policy asks for locality (not with RING_HASH, where
   * consistency wins); then the algorithm chooses.
   *
   * @param client the calling workload (its node and zone), or null when unknown
   * @param hash RING_HASH: the request's hash
   * @return an index into {@code endpoints}
   */
  public int choose(
      List<Workload> endpoints,
      List<String> keys,
      @Nullable Workload client,
      long hash,
      @Nullable String exclude,
      RandomGenerator random) {
    int n = endpoints.size();
    if (n == 1) {
      return 0;
    }
    long now = clock.getAsLong();
    RingHash r = ring;
    if (r == null || !r.keys().equals(keys)) {
      r = new RingHash(keys);
      ring = r;
      stats.keySet().retainAll(keys);
    }
    List<Integer> usable = new ArrayList<>(n);
    for (int i = 0; i < n; i++) {
      if (!OutlierDetector.isEjected(stats(keys.get(i)), now)) {
        usable.add(i);
      }
    }
    if (usable.isEmpty()) {
      for (int i = 0; i < n; i++) {
        usable.add(i);
      }
    }
    if (exclude != null && usable.size() > 1) {
      int ex = keys.indexOf(exclude);
      usable.remove(Integer.valueOf(ex));
    }
    TrafficPolicy.LoadBalancer lb = policy.loadBalancer();
    if (lb.algorithm() == TrafficPolicy.Algorithm.RING_HASH) {
      boolean[] ok = new boolean[n];
      usable.forEach(i -> ok[i] = true);
      int owner = r.lookup(hash, i -> ok[i]);
      return owner < 0 ? usable.get(0) : owner;
    }
    if (lb.localityPreference() && client != null) {
      usable = local(usable, endpoints, client);
    }
    int pick =
        switch (lb.algorithm()) {
          case ROUND_ROBIN -> Balancer.roundRobin(usable.size(), roundRobin.getAndIncrement());
          case RANDOM -> Balancer.random(usable.size(), random);
          case LEAST_REQUEST -> Balancer.leastRequest(statsOf(usable, keys), random);
          case PEAK_EWMA, RING_HASH -> Balancer.peakEwma(statsOf(usable, keys), random);
        };
    return usable.get(pick);
  }

  /** Same node as the client if any such endpoint, else same zone if any, else all. */
  static List<Integer> local(List<Integer> usable, List<Workload> endpoints, Workload client) {
    if (!client.nodeName().isEmpty()) {
      List<Integer> sameNode = new ArrayList<>();
      for (int i : usable) {
        if (client.nodeName().equals(endpoints.get(i).nodeName())) {
          sameNode.add(i);
        }
      }
      if (!sameNode.isEmpty()) {
        return sameNode;
      }
    }
    if (!client.zone().isEmpty()) {
      List<Integer> sameZone = new ArrayList<>();
      for (int i : usable) {
        if (client.zone().equals(endpoints.get(i).zone())) {
          sameZone.add(i);
        }
      }
      if (!sameZone.isEmpty()) {
        return sameZone;
      }
    }
    return usable;
  }

  private List<EndpointStats> statsOf(List<Integer> indices, List<String> keys) {
    List<EndpointStats> out = new ArrayList<>(indices.size());
    for (int i : indices) {
      out.add(stats(keys.get(i)));
    }
    return out;
  }
}
