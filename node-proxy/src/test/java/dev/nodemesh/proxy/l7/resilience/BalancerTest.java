package dev.nodemesh.proxy.l7.resilience;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.random.RandomGenerator;
import org.junit.jupiter.api.Test;

class BalancerTest {
  private final RandomGenerator random = new SplittableRandom(42);

  @Test
  void roundRobinIsExactlyEven() {
    int[] counts = new int[7];
    for (long i = 0; i < 7_000; i++) {
      counts[Balancer.roundRobin(7, i)]++;
    }
    for (int c : counts) {
      assertEquals(1_000, c);
    }
  }

  @Test
  void randomIsEvenWithinTolerance() {
    int[] counts = new int[4];
    for (int i = 0; i < 40_000; i++) {
      counts[Balancer.random(4, random)]++;
    }
    for (int c : counts) {
      assertTrue(Math.abs(c - 10_000) < 500, java.util.Arrays.toString(counts));
    }
  }

  @Test
  void leastRequestPrefersTheLessLoadedOfTwoChoices() {
    List<EndpointStats> eps = stats(3);
    for (int i = 0; i < 10; i++) {
      eps.get(0).started(); // endpoint 0 is busy
    }
    int[] counts = new int[3];
    for (int i = 0; i < 30_000; i++) {
      counts[Balancer.leastRequest(eps, random)]++;
    }
    // Endpoint 0 never wins: every pair that contains it also contains an idle endpoint.
    assertEquals(0, counts[0]);
    assertTrue(Math.abs(counts[1] - counts[2]) < 1_000, java.util.Arrays.toString(counts));
  }

  @Test
  void powerOfTwoNeverPicksTheWorstOfMany() {
    List<Integer> costs = List.of(5, 1, 9, 3);
    int[] counts = new int[4];
    for (int i = 0; i < 10_000; i++) {
      counts[Balancer.powerOfTwo(costs, c -> c, random)]++;
    }
    assertEquals(0, counts[2]); // the worst loses every pair
    assertTrue(counts[1] > counts[3] && counts[3] > counts[0], java.util.Arrays.toString(counts));
  }

  @Test
  void peakEwmaSendsMostTrafficToTheFastEndpoint() {
    // Two endpoints, one 1 ms and one 20 ms: simulate requests with latencies fed back.
    List<EndpointStats> eps = stats(2);
    long now = 0;
    int[] counts = new int[2];
    for (int i = 0; i < 10_000; i++) {
      int pick = Balancer.peakEwma(eps, random);
      counts[pick]++;
      long rtt = pick == 0 ? 1_000_000L : 20_000_000L;
      now += 1_000_000L;
      eps.get(pick).observe(rtt, now);
    }
    // With two endpoints P2C compares both every time: the slow one is chosen only while its
    // latency is unknown (or the fast one is busy), so nearly everything goes to the fast one.
    assertTrue(counts[0] > 9_500, java.util.Arrays.toString(counts));
    assertTrue(counts[1] >= 1, "the slow endpoint was tried at least once to learn its latency");
  }

  @Test
  void peakEwmaTakesAPeakAtOnceAndForgetsItWithTime() {
    EndpointStats e = new EndpointStats("a");
    e.observe(1_000_000, 0);
    e.observe(50_000_000, 1); // a peak replaces the average at once
    assertEquals(50_000_000, e.ewmaNanos(), 1);
    e.observe(1_000_000, 1 + EndpointStats.DECAY_NANOS); // one time constant later: e^-1 weight
    assertEquals(1_000_000 + 49_000_000 * Math.exp(-1), e.ewmaNanos(), 1_000);
    e.started();
    e.started();
    assertEquals(e.ewmaNanos() * 3, e.peakEwmaCost(), 1);
  }

  @Test
  void ringHashIsConsistentAndMovesAboutOneInNPlusOneKeysWhenAnEndpointIsAdded() {
    List<String> five = keys(5);
    RingHash ring = new RingHash(five);
    RingHash again = new RingHash(five);
    List<String> six = keys(6);
    RingHash bigger = new RingHash(six);
    int keys = 20_000;
    int moved = 0;
    int[] share = new int[5];
    for (int i = 0; i < keys; i++) {
      long h = RingHash.hash("user-" + i);
      int a = ring.lookup(h, x -> true);
      assertEquals(a, again.lookup(h, x -> true), "same ring, same answer");
      share[a]++;
      int b = bigger.lookup(h, x -> true);
      if (!six.get(b).equals(five.get(a))) {
        moved++;
        assertEquals(5, b, "a moved key goes to the new endpoint only");
      }
    }
    double movedShare = moved / (double) keys;
    assertTrue(Math.abs(movedShare - 1.0 / 6) < 0.05, "moved " + movedShare);
    for (int s : share) {
      assertTrue(Math.abs(s - keys / 5) < keys / 5 * 0.25, java.util.Arrays.toString(share));
    }
  }

  @Test
  void ringHashSkipsAnUnusableEndpointAndMovesOnlyItsKeys() {
    List<String> k = keys(4);
    RingHash ring = new RingHash(k);
    for (int i = 0; i < 5_000; i++) {
      long h = RingHash.hash("k" + i);
      int a = ring.lookup(h, x -> true);
      int b = ring.lookup(h, x -> x != 2);
      if (a != 2) {
        assertEquals(a, b);
      } else {
        assertTrue(b != 2);
      }
    }
    assertEquals(-1, new RingHash(List.of()).lookup(1, x -> true));
  }

  @Test
  void serviceTrafficPrefersSameNodeThenSameZoneAndSkipsEjected() throws Exception {
    TrafficPolicy p = policy(TrafficPolicy.Algorithm.ROUND_ROBIN, true);
    AtomicLong now = new AtomicLong();
    ServiceTraffic st = new ServiceTraffic(p, now::get, meters());
    List<Workload> eps =
        List.of(
            workload("a", "node-1", "z1"),
            workload("b", "node-2", "z1"),
            workload("c", "node-3", "z2"));
    List<String> keys = List.of("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80");
    Workload clientOnNode1 = workload("client", "node-1", "z1");
    Workload clientOnNode9InZ2 = workload("client", "node-9", "z2");
    Workload clientNowhere = workload("client", "node-9", "z9");
    for (int i = 0; i < 10; i++) {
      assertEquals(0, st.choose(eps, keys, clientOnNode1, 0, null, random));
      assertEquals(2, st.choose(eps, keys, clientOnNode9InZ2, 0, null, random));
    }
    int[] counts = new int[3];
    for (int i = 0; i < 300; i++) {
      counts[st.choose(eps, keys, clientNowhere, 0, null, random)]++;
    }
    assertEquals(List.of(100, 100, 100), List.of(counts[0], counts[1], counts[2]));
    // A failed try's endpoint is avoided on the retry; the local one is the only one left
    // on node-1, so the retry leaves the node.
    assertTrue(st.choose(eps, keys, clientOnNode1, 0, "10.0.0.1:80", random) != 0);
  }

  @Test
  void serviceTrafficRingHashIsStickyPerKey() {
    TrafficPolicy p = policy(TrafficPolicy.Algorithm.RING_HASH, true);
    ServiceTraffic st = new ServiceTraffic(p, () -> 0, meters());
    List<Workload> eps =
        List.of(workload("a", "n", "z"), workload("b", "n", "z"), workload("c", "n", "z"));
    List<String> keys = List.of("10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80");
    for (int u = 0; u < 50; u++) {
      long h = RingHash.hash("h:user-" + u);
      int first = st.choose(eps, keys, null, h, null, random);
      for (int i = 0; i < 5; i++) {
        assertEquals(first, st.choose(eps, keys, null, h, null, random));
      }
    }
  }

  static TrafficPolicy policy(TrafficPolicy.Algorithm a, boolean locality) {
    return new TrafficPolicy(
        "p",
        "default",
        "svc",
        new TrafficPolicy.LoadBalancer(a, null, false, locality),
        null,
        new TrafficPolicy.OutlierDetection(
            0, 0, 1, Duration.ofSeconds(1), Duration.ofSeconds(10), 50),
        TrafficPolicy.Retry.DEFAULT,
        null);
  }

  static ServiceTraffic.Meters meters() {
    SimpleMeterRegistry r = new SimpleMeterRegistry();
    return new ServiceTraffic.Meters(
        r.counter("o"), r.counter("e"), r.counter("r"), r.counter("t"), r.counter("b"));
  }

  static Workload workload(String name, String node, String zone) {
    return new Workload(
        "uid-" + name,
        name,
        "default",
        List.of(InetAddress.getLoopbackAddress()),
        Map.of(),
        "default",
        node,
        Map.of(),
        zone);
  }

  private static List<EndpointStats> stats(int n) {
    List<EndpointStats> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add(new EndpointStats("e" + i));
    }
    return out;
  }

  private static List<String> keys(int n) {
    List<String> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      out.add("10.1.0." + (i + 1) + ":8080");
    }
    return out;
  }
}
