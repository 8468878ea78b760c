package dev.nodemesh.control.store;

import java.util.Map;

/**
 * The store's content at one revision, immutable, for translation off the store's own maps.
 *
 * @param changedAtNanos when the oldest change not yet in an earlier snapshot happened (the
 *     injected clock); push latency is measured from it
 */
public record StoreSnapshot(
    long revision,
    Map<ResourceType, Map<String, VersionedResource>> resources,
    long changedAtNanos) {

  public StoreSnapshot {
    Map<ResourceType, Map<String, VersionedResource>> copy = ResourceType.newMap();
    for (ResourceType t : ResourceType.values()) {
      copy.put(t, Map.copyOf(resources.getOrDefault(t, Map.of())));
    }
    resources = copy;
  }

  public Map<String, VersionedResource> of(ResourceType type) {
    return resources.getOrDefault(type, Map.of());
  }
}
