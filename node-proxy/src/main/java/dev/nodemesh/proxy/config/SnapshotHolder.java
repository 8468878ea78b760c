package dev.nodemesh.proxy.config;

import dev.nodemesh.model.config.ConfigSnapshot;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;

/**
 * The one place the current snapshot lives. Readers call {@link #current()} once per connection (or
 * request) and keep that snapshot for its whole decision, so a swap mid-connection never mixes two
 * configs. No locks: a volatile read on the hot path, one atomic exchange per update.
 */
public final class SnapshotHolder {
  private final AtomicReference<ConfigSnapshot> current;

  public SnapshotHolder() {
    this(ConfigSnapshot.empty());
  }

  public SnapshotHolder(ConfigSnapshot initial) {
    this.current = new AtomicReference<>(Objects.requireNonNull(initial, "initial"));
  }

  public ConfigSnapshot current() {
    return current.get();
  }

  /** Makes {@code next} current and returns the snapshot it replaced. */
  public ConfigSnapshot swap(ConfigSnapshot next) {
    return current.getAndSet(Objects.requireNonNull(next, "next"));
  }
}
