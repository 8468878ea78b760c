package dev.nodemesh.proxy.config;

import dev.nodemesh.model.config.ConfigSnapshot;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicReference;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one place the current snapshot lives. Readers call {@link #current()} once per connection (or
 * request) and keep that snapshot for its whole decision, so a swap mid-connection never mixes two
 * configs. No locks: a volatile read on the hot path, one atomic exchange per update. Whoever must
 * act on a change (the re-check of open connections against new policy) registers a {@link
 * SwapListener}; listeners run on the swapping thread (xDS, or the config-directory watcher), never
 * on a data-plane loop.
 */
public final class SnapshotHolder {
  private static final Logger log = LoggerFactory.getLogger(SnapshotHolder.class);

  private final AtomicReference<ConfigSnapshot> current;
  private final List<SwapListener> listeners = new CopyOnWriteArrayList<>();

  /**
   * Told of each swap after the new snapshot is current. It runs on the swapping thread and must
   * return quickly: hand real work to the threads that own it.
   */
  @FunctionalInterface
  public interface SwapListener {
    void swapped(ConfigSnapshot previous, ConfigSnapshot next);
  }

  public SnapshotHolder() {
    this(ConfigSnapshot.empty());
  }

  public SnapshotHolder(ConfigSnapshot initial) {
    this.current = new AtomicReference<>(Objects.requireNonNull(initial, "initial"));
  }

  public ConfigSnapshot current() {
    return current.get();
  }

  /**
   * Makes {@code next} current, tells the listeners (unless {@code next} is the snapshot already in
   * force) and returns the snapshot it replaced. A listener that throws is logged; the swap and the
   * other listeners stand.
   */
  public ConfigSnapshot swap(ConfigSnapshot next) {
    ConfigSnapshot previous = current.getAndSet(Objects.requireNonNull(next, "next"));
    if (previous != next) {
      for (SwapListener l : listeners) {
        try {
          l.swapped(previous, next);
        } catch (RuntimeException e) {
          log.warn("a listener of config version {} failed", next.version(), e);
        }
      }
    }
    return previous;
  }

  /** Adds {@code listener}, told of every later swap (see {@link SwapListener}). */
  public void onSwap(SwapListener listener) {
    listeners.add(Objects.requireNonNull(listener, "listener"));
  }
}
