package dev.nodemesh.bpf.testing;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * What a test made and must remove, closed in the reverse order of adding (a pod's processes before
 * its namespace, a namespace before the node that holds it). Every item is closed whatever the
 * others did; the first failure is thrown with the later ones suppressed. Closing empties it, so a
 * test class can use one per test.
 */
public final class Cleanup implements AutoCloseable {
  private final List<AutoCloseable> items = new ArrayList<>();

  /** Closes {@code c} at {@link #close()}; returns it. */
  public synchronized <T extends AutoCloseable> T add(T c) {
    items.add(c);
    return c;
  }

  /** Kills {@code p} (by its own PID) at {@link #close()} and waits for it; returns it. */
  public Process add(Process p) {
    add(
        () -> {
          p.destroyForcibly();
          p.waitFor(10, TimeUnit.SECONDS);
        });
    return p;
  }

  @Override
  public void close() throws Exception {
    List<AutoCloseable> all;
    synchronized (this) {
      all = new ArrayList<>(items);
      items.clear();
    }
    Exception first = null;
    for (int i = all.size() - 1; i >= 0; i--) {
      try {
        all.get(i).close();
      } catch (Exception e) {
        if (first == null) {
          first = e;
        } else {
          first.addSuppressed(e);
        }
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
