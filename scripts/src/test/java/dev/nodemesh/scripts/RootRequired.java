package dev.nodemesh.scripts;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assertions;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * For tests tagged {@code root} (network namespaces, /etc/netns): without root they skip with a
 * message, except in CI ({@code CI=true}), where a missing root fails them, because CI must run
 * every tier (see STYLE.md, tier 3).
 */
public final class RootRequired implements BeforeAllCallback {
  /** What to do before a root test class. */
  enum Decision {
    RUN,
    SKIP,
    FAIL
  }

  static Decision decide(boolean root, boolean ci) {
    if (root) {
      return Decision.RUN;
    }
    return ci ? Decision.FAIL : Decision.SKIP;
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    String what = context.getDisplayName() + " needs root (network namespaces, /etc/netns)";
    switch (decide(isRoot(), "true".equalsIgnoreCase(System.getenv("CI")))) {
      case RUN -> {}
      case SKIP -> Assumptions.abort(what + "; skipped: not root and not in CI");
      case FAIL -> Assertions.fail(what + ", and CI=true: root tests must run in CI");
    }
  }

  static boolean isRoot() {
    try {
      // /proc/self belongs to the effective uid of the reading process.
      return Integer.valueOf(0).equals(Files.getAttribute(Path.of("/proc/self"), "unix:uid"));
    } catch (IOException | UnsupportedOperationException e) {
      return false;
    }
  }
}
