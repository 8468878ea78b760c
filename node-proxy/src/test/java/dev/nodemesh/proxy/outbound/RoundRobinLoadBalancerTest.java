package dev.nodemesh.proxy.outbound;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.nodemesh.model.config.MeshService;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

class RoundRobinLoadBalancerTest {
  private static MeshService svc(String namespace, String name) {
    return new MeshService(name, namespace, List.of(), List.of(), Map.of());
  }

  @Test
  void eachServiceRotatesOnItsOwn() {
    RoundRobinLoadBalancer lb = new RoundRobinLoadBalancer();
    MeshService a = svc("default", "a");
    MeshService sameNameOtherNamespace = svc("other", "a");
    assertEquals(0, lb.pick(a, 3));
    assertEquals(1, lb.pick(a, 3));
    assertEquals(0, lb.pick(sameNameOtherNamespace, 3));
    assertEquals(2, lb.pick(a, 3));
    assertEquals(0, lb.pick(a, 3));
  }

  @Test
  void concurrentPicksAreSpreadExactlyEvenly() throws Exception {
    RoundRobinLoadBalancer lb = new RoundRobinLoadBalancer();
    MeshService s = svc("default", "echo");
    int threads = 8;
    int picksPerThread = 3000;
    AtomicIntegerArray counts = new AtomicIntegerArray(3);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      List<Future<?>> done = new ArrayList<>();
      for (int t = 0; t < threads; t++) {
        done.add(
            pool.submit(
                () -> {
                  for (int i = 0; i < picksPerThread; i++) {
                    counts.incrementAndGet(lb.pick(s, 3));
                  }
                }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    int each = threads * picksPerThread / 3;
    assertArrayEquals(
        new int[] {each, each, each}, new int[] {counts.get(0), counts.get(1), counts.get(2)});
  }

  @Test
  void noEndpointsIsACallerBug() {
    assertThrows(
        IllegalArgumentException.class, () -> new RoundRobinLoadBalancer().pick(svc("d", "s"), 0));
  }
}
