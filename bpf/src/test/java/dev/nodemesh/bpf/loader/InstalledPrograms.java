package dev.nodemesh.bpf.loader;

import java.io.IOException;
import org.jspecify.annotations.Nullable;

/**
 * The loader a root test has installed now, for the test's clean-up: closing uninstalls it, unless
 * the test already uninstalled or closed it and said so with {@link #clear()}. Safe to read from a
 * test's server threads while the test swaps it.
 */
final class InstalledPrograms implements AutoCloseable {
  private volatile @Nullable InterceptionPrograms programs;

  /** Makes {@code p} the one to uninstall at the end; returns it. */
  InterceptionPrograms set(InterceptionPrograms p) {
    programs = p;
    return p;
  }

  /** Nothing to uninstall at the end (the test closed or uninstalled it itself). */
  void clear() {
    programs = null;
  }

  /** The installed loader, or null while there is none. */
  @Nullable InterceptionPrograms orNull() {
    return programs;
  }

  /** The installed loader; throws if there is none. */
  InterceptionPrograms current() {
    InterceptionPrograms p = programs;
    if (p == null) {
      throw new IllegalStateException("no programs loaded");
    }
    return p;
  }

  @Override
  public void close() throws IOException {
    InterceptionPrograms p = programs;
    if (p != null) {
      p.uninstall();
    }
  }
}
