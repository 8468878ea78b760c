package dev.nodemesh.control.store;

import com.google.protobuf.Message;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;

/**
 * Every resource the sources produced, by type and name, each with its content version. A write
 * that changes nothing (same content, e.g. an informer resync) is not a change: the revision stays
 * and no listener hears of it.
 *
 * <p>Not thread-safe by design: the control plane confines it to its one serialized executor, which
 * is where sources post their changes and where pushes are computed.
 */
public final class ResourceStore {
  private final Map<ResourceType, Map<String, VersionedResource>> resources = ResourceType.newMap();
  private final LongSupplier nanoClock;
  private final Runnable onChange;
  private long revision;
  private long firstUnpublishedChange = -1;

  /**
   * @param onChange called after every real change (on the caller's thread, i.e. the executor)
   */
  public ResourceStore(LongSupplier nanoClock, Runnable onChange) {
    this.nanoClock = nanoClock;
    this.onChange = onChange;
    for (ResourceType t : ResourceType.values()) {
      resources.put(t, new HashMap<>());
    }
  }

  /** Adds or replaces one resource; true when its content changed. */
  public boolean put(ResourceType type, String name, Message message) {
    VersionedResource next = VersionedResource.of(name, message);
    VersionedResource old = of(type).put(name, next);
    if (old != null && old.version().equals(next.version())) {
      return false;
    }
    changed();
    return true;
  }

  /** Removes one resource; true when it was there. */
  public boolean remove(ResourceType type, String name) {
    if (of(type).remove(name) == null) {
      return false;
    }
    changed();
    return true;
  }

  /** Makes {@code next} the whole content of {@code type}; true when anything changed. */
  public boolean replaceAll(ResourceType type, Map<String, ? extends Message> next) {
    Map<String, VersionedResource> current = of(type);
    boolean any = current.keySet().retainAll(next.keySet());
    for (Map.Entry<String, ? extends Message> e : next.entrySet()) {
      VersionedResource r = VersionedResource.of(e.getKey(), e.getValue());
      VersionedResource old = current.put(e.getKey(), r);
      any |= old == null || !old.version().equals(r.version());
    }
    if (any) {
      changed();
    }
    return any;
  }

  public @Nullable VersionedResource get(ResourceType type, String name) {
    return of(type).get(name);
  }

  public long revision() {
    return revision;
  }

  /** The current content; marks every change so far as published (for push latency). */
  public StoreSnapshot snapshot() {
    long changedAt = firstUnpublishedChange < 0 ? nanoClock.getAsLong() : firstUnpublishedChange;
    firstUnpublishedChange = -1;
    return new StoreSnapshot(revision, resources, changedAt);
  }

  private Map<String, VersionedResource> of(ResourceType type) {
    return Objects.requireNonNull(resources.get(type), "every type has a map");
  }

  private void changed() {
    revision++;
    if (firstUnpublishedChange < 0) {
      firstUnpublishedChange = nanoClock.getAsLong();
    }
    onChange.run();
  }
}
