package dev.nodemesh.cni.plugin;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * A network namespace other than the test's own, held open by a {@code sleep} started under {@code
 * unshare --net} (with {@code -r}, a user namespace, when not root), and named as runtimes name
 * one: {@code /proc/PID/ns/net}. Closing it ends that one process by its own handle, which frees
 * the namespace.
 */
final class ScratchNetns implements AutoCloseable {
  private final Process process;
  private final String path;

  private ScratchNetns(Process process) {
    this.process = process;
    this.path = "/proc/" + process.pid() + "/ns/net";
  }

  static ScratchNetns start() throws IOException, InterruptedException {
    boolean root = "root".equals(System.getProperty("user.name"));
    List<String> cmd =
        root
            ? List.of("unshare", "--net", "--", "sleep", "600")
            : List.of("unshare", "-r", "--net", "--", "sleep", "600");
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    ScratchNetns n = new ScratchNetns(p);
    String own = Files.readSymbolicLink(Path.of("/proc/self/ns/net")).toString();
    // unshare switches namespace before it execs sleep; wait for that switch to be visible.
    for (int i = 0; i < 500; i++) {
      try {
        String theirs = Files.readSymbolicLink(Path.of(n.path)).toString();
        if (!theirs.equals(own)
            && Files.readSymbolicLink(Path.of("/proc/" + p.pid() + "/exe"))
                .toString()
                .endsWith("sleep")) {
          return n;
        }
      } catch (IOException notYet) {
        // the process is still starting
      }
      if (!p.isAlive()) {
        throw new IllegalStateException("unshare exited with " + p.exitValue());
      }
      Thread.sleep(10);
    }
    n.close();
    throw new IllegalStateException("unshare did not enter a new network namespace");
  }

  String path() {
    return path;
  }

  @Override
  public void close() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(5, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      process.waitFor(5, TimeUnit.SECONDS);
    }
  }
}
