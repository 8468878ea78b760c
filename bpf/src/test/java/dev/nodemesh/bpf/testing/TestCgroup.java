package dev.nodemesh.bpf.testing;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A child cgroup v2 that a test creates under the machine's cgroup2 mount, named with the run
 * prefix, for attaching eBPF programs to without touching any process the test did not start. Only
 * the test's own "pod" processes go in it ({@link #joinCommand}); close it after they exited.
 */
public final class TestCgroup implements AutoCloseable {
  private static final Path ROOT = Path.of("/sys/fs/cgroup/unified");

  private final Path path;

  private TestCgroup(Path path) {
    this.path = path;
  }

  public static TestCgroup create(String suffix) throws IOException {
    if (!Files.exists(ROOT.resolve("cgroup.procs"))) {
      throw new IOException("no cgroup2 mounted at " + ROOT);
    }
    Path p = ROOT.resolve(TestNetns.runPrefix() + "-" + suffix);
    Files.createDirectory(p);
    return new TestCgroup(p);
  }

  public Path path() {
    return path;
  }

  /** Shell words that move the running shell into this cgroup: prefix a command with them. */
  public String joinCommand() {
    return "echo $$ > " + path.resolve("cgroup.procs") + " && exec ";
  }

  public boolean empty() throws IOException {
    return Files.readString(path.resolve("cgroup.procs")).isBlank();
  }

  @Override
  public void close() throws IOException {
    // rmdir fails while a process is still in it; the test ends its processes first.
    for (int i = 0; i < 50 && !empty(); i++) {
      try {
        Thread.sleep(100);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        break;
      }
    }
    Files.delete(path);
  }
}
