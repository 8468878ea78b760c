package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Round robin per service: one counter per namespace/name, so one busy service does not skew
 * another's rotation. Lock-free once a service's counter exists (a map read and an atomic
 * increment). Limits: the rotation is over the usable endpoints of each call, so when the endpoint
 * set changes the next pick may repeat or skip one endpoint; counters of deleted services stay
 * until the proxy restarts (a few bytes each).
 */
public final class RoundRobinLoadBalancer implements LoadBalancer {
  private final ConcurrentHashMap<NamespacedName, AtomicInteger> counters =
      new ConcurrentHashMap<>();

  @Override
  public int pick(MeshService service, int endpointCount) {
    if (endpointCount < 1) {
      throw new IllegalArgumentException("endpointCount " + endpointCount + " < 1");
    }
    NamespacedName id = service.id();
    AtomicInteger counter = counters.get(id);
    if (counter == null) {
      // computeIfAbsent may lock its bin, so it is kept off the path taken after the first pick.
      counter = counters.computeIfAbsent(id, k -> new AtomicInteger());
    }
    // floorMod keeps the index valid when the counter wraps past Integer.MAX_VALUE.
    return Math.floorMod(counter.getAndIncrement(), endpointCount);
  }
}
