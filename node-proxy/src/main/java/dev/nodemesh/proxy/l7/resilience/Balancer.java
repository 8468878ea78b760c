package dev.nodemesh.proxy.l7.resilience;

import java.util.List;
import java.util.function.ToDoubleFunction;
import java.util.random.RandomGenerator;

/** The selection step of each algorithm over candidates that are already filtered. Pure. */
public final class Balancer {
  private Balancer() {}

  /** Round robin: the {@code counter}-th candidate, wrapping. */
  public static int roundRobin(int candidates, long counter) {
    return (int) Math.floorMod(counter, (long) candidates);
  }

  /** Uniformly random. */
  public static int random(int candidates, RandomGenerator random) {
    return random.nextInt(candidates);
  }

  /**
   * Power of two choices: two distinct random candidates, the one with the lower {@code cost} wins
   * (the first on a tie). With one candidate, that one.
   */
  public static <T> int powerOfTwo(
      List<T> candidates, ToDoubleFunction<T> cost, RandomGenerator random) {
    int n = candidates.size();
    if (n == 1) {
      return 0;
    }
    int a = random.nextInt(n);
    int b = random.nextInt(n - 1);
    if (b >= a) {
      b++;
    }
    return cost.applyAsDouble(candidates.get(b)) < cost.applyAsDouble(candidates.get(a)) ? b : a;
  }

  /** LEAST_REQUEST: P2C on requests in flight. */
  public static int leastRequest(List<EndpointStats> candidates, RandomGenerator random) {
    return powerOfTwo(candidates, EndpointStats::active, random);
  }

  /** PEAK_EWMA: P2C on latency × (requests in flight + 1). */
  public static int peakEwma(List<EndpointStats> candidates, RandomGenerator random) {
    return powerOfTwo(candidates, EndpointStats::peakEwmaCost, random);
  }
}
