package dev.nodemesh.bpf.iptables;

import dev.nodemesh.bpf.iptables.PodInterception.Family;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * Runs nodemesh's iptables transactions in a pod's namespace with as few process spawns as the
 * namespace's state allows, because a pod start waits for them: each family's {@link Step} first
 * tries its {@code fast} script, written for the expected state (nothing of ours for an install,
 * exactly what we installed for a remove) and made to fail as a whole when the state is different;
 * only then is the family's table read ({@code iptables-save}) and the {@code slow} script computed
 * from what is there. The families' fast scripts run as concurrent processes, and the caller's
 * in-process work ({@code meanwhile}, e.g. netlink) runs while they do.
 *
 * <p>Commands run through {@code nsenter --net=<path>}, not from a thread moved into the namespace
 * with setns: a child does inherit the spawning thread's namespace, but so does every thread that
 * thread creates meanwhile, and the JDK starts its process-reaper threads lazily from whichever
 * thread spawns, which would leave such a thread (and the namespace it pins) in the pod.
 */
final class Transactions {
  private static final long TIMEOUT_SECONDS = 20;

  private Transactions() {}

  /**
   * One family's share of a transaction: the script for the expected state ({@code null}: read the
   * table first), and the script for the table as {@code iptables-save} prints it (empty: nothing
   * to do).
   */
  record Step(Family family, @Nullable String fast, Function<String, String> slow) {}

  /** In-process work done while the fast scripts run. */
  @FunctionalInterface
  interface Meanwhile {
    void run() throws IOException;
  }

  /**
   * Runs every step (all of them, even after one failed) and {@code meanwhile}; throws the first
   * failure with the others suppressed. Returns how many processes it ran: one per step when every
   * fast script fitted the namespace (what the tests of each path count).
   */
  static int run(Path netns, List<Step> steps, Meanwhile meanwhile) throws IOException {
    List<@Nullable Started> fast = new ArrayList<>();
    IOException failure = null;
    int spawned = 0;
    for (Step s : steps) {
      Started started = null;
      String script = s.fast();
      if (script != null) {
        try {
          spawned++;
          started = Started.start(netns, script, restore(s.family()));
        } catch (IOException e) {
          failure = add(failure, e);
        }
      }
      fast.add(started);
    }
    try {
      meanwhile.run();
    } catch (IOException e) {
      failure = add(failure, e);
    }
    for (int i = 0; i < steps.size(); i++) {
      Step s = steps.get(i);
      Started started = fast.get(i);
      IOException fastFailure = null;
      if (started != null) {
        try {
          started.finish();
          continue;
        } catch (IOException e) {
          fastFailure = e; // not the state it was written for: read and converge below
        }
      }
      try {
        spawned++;
        String script = s.slow().apply(save(netns, s.family()));
        if (!script.isEmpty()) {
          spawned++;
          Started.start(netns, script, restore(s.family())).finish();
        }
      } catch (IOException e) {
        if (fastFailure != null) {
          e.addSuppressed(fastFailure);
        }
        failure = add(failure, e);
      }
    }
    if (failure != null) {
      throw failure;
    }
    return spawned;
  }

  private static IOException add(@Nullable IOException first, IOException next) {
    if (first == null) {
      return next;
    }
    first.addSuppressed(next);
    return first;
  }

  private static List<String> restore(Family family) {
    return List.of(family.restore, "-w", "--noflush");
  }

  /** Every table of {@code family} in the namespace, as (ip6)tables-save prints them. */
  static String save(Path netns, Family family) throws IOException {
    return run(netns, null, List.of(family.save));
  }

  /** The lines of table {@code table} in an iptables-save output (empty when it has none). */
  static String table(String save, String table) {
    StringBuilder s = new StringBuilder();
    boolean in = false;
    for (String line : save.lines().toList()) {
      if (line.equals("*" + table)) {
        in = true;
      }
      if (in) {
        s.append(line).append('\n');
        if (line.equals("COMMIT")) {
          in = false;
        }
      }
    }
    return s.toString();
  }

  /** Runs {@code cmd} inside the namespace at {@code netns}; its output, or why it failed. */
  static String run(Path netns, @Nullable String stdin, List<String> cmd) throws IOException {
    return Started.start(netns, stdin, cmd).finish();
  }

  /** A command started in a namespace, its input written and closed, its output not yet read. */
  private record Started(Process process, List<String> cmd) {
    static Started start(Path netns, @Nullable String stdin, List<String> cmd) throws IOException {
      List<String> full = new ArrayList<>();
      full.add("nsenter");
      full.add("--net=" + netns);
      full.addAll(cmd);
      Process p = new ProcessBuilder(full).redirectErrorStream(true).start();
      try (OutputStream in = p.getOutputStream()) {
        if (stdin != null) {
          in.write(stdin.getBytes(StandardCharsets.UTF_8));
        }
      } catch (IOException e) {
        // It exited before reading its input: finish() reports why.
      }
      return new Started(p, full);
    }

    /** Waits for the command; its output, or an exception naming it, its status and output. */
    String finish() throws IOException {
      String out;
      try (InputStream o = process.getInputStream()) {
        out = new String(o.readAllBytes(), StandardCharsets.UTF_8);
      }
      try {
        if (!process.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
          process.destroyForcibly();
          throw new IOException(String.join(" ", cmd) + " timed out");
        }
      } catch (InterruptedException e) {
        process.destroyForcibly();
        Thread.currentThread().interrupt();
        throw new IOException("interrupted while running " + String.join(" ", cmd), e);
      }
      if (process.exitValue() != 0) {
        throw new IOException(
            String.join(" ", cmd) + " exited " + process.exitValue() + ": " + out.strip());
      }
      return out;
    }
  }
}
