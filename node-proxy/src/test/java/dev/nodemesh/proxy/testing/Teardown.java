package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.testing.Cleanup;
import org.jspecify.annotations.Nullable;

/**
 * The end of an end-to-end test: closes what it set up, in the order given (a node before the
 * interception set-up it runs on), each one even when an earlier close failed, skipping what a
 * set-up that failed early never made (null). The first failure is thrown with the later ones
 * suppressed ({@link Cleanup}'s rules).
 */
public final class Teardown {
  private Teardown() {}

  public static void close(@Nullable AutoCloseable... inOrder) throws Exception {
    Cleanup cleanup = new Cleanup();
    for (int i = inOrder.length - 1; i >= 0; i--) { // Cleanup closes the last added first
      AutoCloseable c = inOrder[i];
      if (c != null) {
        cleanup.add(c);
      }
    }
    cleanup.close();
  }
}
