package dev.nodemesh.scripts.local;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs short system commands ({@code ip}, {@code bash -c} probes) and captures their output. Local
 * mode shells out to iproute2 rather than netlink because these are one-off set-up steps and the
 * commands are what a person would type to inspect the same state.
 *
 * <p>Limits: output is read after exit, so only for commands with small output; each run is bounded
 * by a timeout and killed after it.
 */
public final class Exec {
  private static final long TIMEOUT_SECONDS = 30;

  /** Exit code and merged stdout+stderr. */
  public record Result(int exitCode, String output) {
    public boolean ok() {
      return exitCode == 0;
    }
  }

  private Exec() {}

  /** Runs and returns the result whatever the exit code. */
  public static Result run(List<String> argv) throws IOException {
    Process p =
        new ProcessBuilder(argv)
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .start();
    try {
      // The output is drained before waiting; the commands used here print little.
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return new Result(-1, out + "\n(timed out: " + String.join(" ", argv) + ")");
      }
      return new Result(p.exitValue(), out);
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted running " + String.join(" ", argv), e);
    }
  }

  /** Runs and fails with the command's output unless it exits 0. */
  public static String check(String... argv) throws IOException {
    Result r = run(List.of(argv));
    if (!r.ok()) {
      throw new IOException(
          "`" + String.join(" ", argv) + "` exited " + r.exitCode() + ": " + r.output().strip());
    }
    return r.output();
  }

  /** {@code ip [-n netns] args...}. */
  public static String ip(String netns, String... args) throws IOException {
    List<String> argv = new ArrayList<>(List.of("ip", "-n", netns));
    argv.addAll(List.of(args));
    return check(argv.toArray(String[]::new));
  }
}
