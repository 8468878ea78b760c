package dev.nodemesh.scripts.local;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.BooleanSupplier;

/**
 * Questions about named network namespaces, answered through iproute2 and /run/netns.
 *
 * <p>Limits: only namespaces named through {@code ip netns} (files in /run/netns) are seen.
 */
public final class Netns {
  /** Where {@code ip netns add} bind-mounts named namespaces. */
  public static final Path RUN_NETNS = Path.of("/run/netns");

  private Netns() {}

  public static boolean exists(String name) {
    return Files.exists(RUN_NETNS.resolve(name));
  }

  /** The path the node agent opens to enter the namespace. */
  public static Path path(String name) {
    return Path.of("/var/run/netns").resolve(name);
  }

  public static boolean linkExists(String netns, String link) throws IOException {
    return exists(netns) && Exec.run(List.of("ip", "-n", netns, "link", "show", "dev", link)).ok();
  }

  /** Every process whose network namespace is {@code netns}. */
  public static List<ProcessHandle> processes(String netns) throws IOException {
    if (!exists(netns)) {
      return List.of();
    }
    Exec.Result r = Exec.run(List.of("ip", "netns", "pids", netns));
    List<ProcessHandle> out = new ArrayList<>();
    if (!r.ok()) {
      return out;
    }
    for (String line : r.output().split("\\s+")) {
      if (line.matches("\\d+")) {
        ProcessHandle.of(Long.parseLong(line)).ifPresent(out::add);
      }
    }
    return out;
  }

  /**
   * Polls a TCP connect from inside {@code netns} until it succeeds, {@code stillRunning} says the
   * server is gone, or {@code timeout} passes. Uses bash's /dev/tcp so no helper needs installing.
   */
  public static boolean awaitTcp(
      String netns, String ip, int port, Duration timeout, BooleanSupplier stillRunning)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    List<String> probe =
        List.of("ip", "netns", "exec", netns, "bash", "-c", "exec 3<>/dev/tcp/" + ip + "/" + port);
    while (System.nanoTime() < deadline) {
      if (Exec.run(probe).ok()) {
        return true;
      }
      if (!stillRunning.getAsBoolean()) {
        return false;
      }
      Thread.sleep(100);
    }
    return false;
  }

  /** The last lines of a log, for error messages. */
  public static String tail(Path log, int lines) {
    try {
      List<String> all = Files.readAllLines(log);
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    } catch (IOException e) {
      return "(no log at " + log + ")";
    }
  }
}
