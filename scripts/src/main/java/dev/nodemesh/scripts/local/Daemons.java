package dev.nodemesh.scripts.local;

import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.jspecify.annotations.Nullable;

/**
 * Starts the long-running processes of a run (the proxy, pod apps) detached from the launcher, and
 * stops them again by pid.
 *
 * <p>Processes are started under {@code setsid} so they outlive {@code local up} and a Ctrl-C in
 * its terminal; because the JVM's child is never a process-group leader, {@code setsid} (like
 * {@code ip netns exec}) execs in place and the recorded pid is the app's own. Signals go only to a
 * pid whose kernel start time still matches the recorded one, so a reused pid is never hit.
 */
public final class Daemons {
  private static final Duration TERM_GRACE = Duration.ofSeconds(5);

  private Daemons() {}

  /**
   * Records the process as pending, starts it (inside {@code netns} when non-null) with output to
   * {@code log}, then records its pid and start time.
   */
  public static Resource start(
      StateFile state, String role, @Nullable String netns, List<String> argv, Path log)
      throws IOException {
    return start(state, role, netns, null, argv, log);
  }

  /**
   * As above, the process joining {@code cgroup} (when non-null) before it enters {@code netns}: a
   * pod's process in eBPF mode ({@link PodProcess}). The journal records {@code argv} alone.
   */
  public static Resource start(
      StateFile state,
      String role,
      @Nullable String netns,
      @Nullable Path cgroup,
      List<String> argv,
      Path log)
      throws IOException {
    Resource pending = Resource.pendingProcess(role, netns);
    state.add(pending);
    List<String> inPod = new ArrayList<>();
    if (netns != null) {
      inPod.addAll(List.of("ip", "netns", "exec", netns));
    }
    inPod.addAll(argv);
    List<String> cmd = new ArrayList<>(List.of("setsid"));
    cmd.addAll(PodProcess.inCgroup(cgroup, inPod));
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(ProcessBuilder.Redirect.appendTo(log.toFile()))
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
            .start();
    Long started = startMillis(p.toHandle()).orElse(null);
    Resource running =
        new Resource(StateFile.Kind.process, role, netns, p.pid(), started, null, null, argv);
    state.update(pending, running);
    return running;
  }

  /** True when the recorded process is still the one we started. */
  public static boolean alive(Resource r) {
    return handle(r).isPresent();
  }

  /** SIGTERM, wait, SIGKILL. Returns true once the process is gone (or was already). */
  public static boolean stop(Resource r) {
    return stop(r, TERM_GRACE);
  }

  /**
   * As {@link #stop(Resource)}, waiting up to {@code grace} after the SIGTERM (a draining proxy
   * needs its drain grace) before the SIGKILL.
   */
  public static boolean stop(Resource r, Duration grace) {
    Optional<ProcessHandle> h = handle(r);
    if (h.isEmpty()) {
      return true;
    }
    return stop(h.get(), grace);
  }

  /** Stops any process (used for the leftovers found inside our own network namespaces). */
  public static boolean stop(ProcessHandle h) {
    return stop(h, TERM_GRACE);
  }

  private static boolean stop(ProcessHandle h, Duration grace) {
    h.destroy();
    if (awaitExit(h, grace)) {
      return true;
    }
    h.destroyForcibly();
    return awaitExit(h, Duration.ofSeconds(5));
  }

  /**
   * The recorded command line of a running process: from the journal, or (files written before it
   * was recorded) from the kernel's {@code /proc/PID/cmdline}. Empty when the process is gone.
   */
  public static Optional<List<String>> commandLine(Resource r) throws IOException {
    if (handle(r).isEmpty()) {
      return Optional.empty();
    }
    if (r.argv() != null && !r.argv().isEmpty()) {
      return Optional.of(r.argv());
    }
    String raw = java.nio.file.Files.readString(Path.of("/proc/" + r.pid() + "/cmdline"));
    if (raw.isEmpty()) {
      return Optional.empty();
    }
    String trimmed = raw.endsWith("\0") ? raw.substring(0, raw.length() - 1) : raw;
    return Optional.of(List.of(trimmed.split("\0", -1)));
  }

  private static boolean awaitExit(ProcessHandle h, Duration d) {
    try {
      h.onExit().get(d.toMillis(), TimeUnit.MILLISECONDS);
      return true;
    } catch (TimeoutException e) {
      return !h.isAlive();
    } catch (ExecutionException e) {
      return !h.isAlive();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return !h.isAlive();
    }
  }

  private static Optional<ProcessHandle> handle(Resource r) {
    if (r.pid() <= 0) {
      return Optional.empty();
    }
    return ProcessHandle.of(r.pid())
        .filter(ProcessHandle::isAlive)
        .filter(
            h -> r.startMillis() == null || r.startMillis().equals(startMillis(h).orElse(null)));
  }

  private static Optional<Long> startMillis(ProcessHandle h) {
    return h.info().startInstant().map(Instant::toEpochMilli);
  }
}
