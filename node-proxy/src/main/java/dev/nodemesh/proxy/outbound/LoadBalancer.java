package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.MeshService;

/**
 * Chooses one of a service's usable endpoints. Called on the hot path, once per connection, from
 * many event loops at once: implementations must be thread-safe and must not block.
 */
public interface LoadBalancer {

  /**
   * Returns an index in {@code [0, endpointCount)} into the endpoints the router found usable,
   * which keep the snapshot's order (sorted by name).
   *
   * @param endpointCount at least 1
   */
  int pick(MeshService service, int endpointCount);
}
