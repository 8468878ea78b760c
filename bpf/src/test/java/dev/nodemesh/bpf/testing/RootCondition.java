package dev.nodemesh.bpf.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.opentest4j.TestAbortedException;

/** Skips (outside CI) or fails (inside CI) a {@link RootTest} when not running as root. */
public final class RootCondition implements BeforeAllCallback {
  /** What to do before a root test class. */
  public enum Decision {
    RUN,
    SKIP,
    FAIL
  }

  public static Decision decide(boolean root, boolean ci) {
    if (root) {
      return Decision.RUN;
    }
    return ci ? Decision.FAIL : Decision.SKIP;
  }

  @Override
  public void beforeAll(ExtensionContext context) {
    boolean ci = "true".equalsIgnoreCase(System.getenv("CI"));
    Decision d = decide(isRoot(), ci);
    if (d == Decision.RUN) {
      return;
    }
    String what = context.getDisplayName() + " needs root (network namespaces, iptables, eBPF)";
    if (d == Decision.FAIL) {
      throw new IllegalStateException(what + ", and CI=true: a skipped root test is a failure");
    }
    throw new TestAbortedException(what + "; skipped. Run as root, or in CI, to run it.");
  }

  public static boolean isRoot() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("Uid:")) {
          return line.split("\\s+")[2].equals("0");
        }
      }
    } catch (IOException e) {
      return false;
    }
    return false;
  }
}
