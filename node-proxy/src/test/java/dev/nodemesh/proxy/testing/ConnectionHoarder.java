package dev.nodemesh.proxy.testing;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An attacker pod's process that opens many idle TCP connections and holds them: a python3 run as
 * one of the pod's processes ({@link TestNode#podCommand}), which connects {@code count} sockets to
 * one address at a fixed rate without sending a byte, waits until every handshake has finished or
 * failed, sorts what it holds into still open and reset (or closed) by the far side, prints one
 * JSON line of counts and then holds everything until its stdin closes. It is a process of its own
 * because one process may hold at most {@code RLIMIT_NOFILE} fds (20,000 hard on these machines,
 * and root here has no {@code CAP_SYS_RESOURCE} to raise it): 30,000 connections take two.
 *
 * <p>Ended by {@link #close} through its own handle (stdin closed, then its PID signalled); when
 * this JVM dies, its stdin closes and it ends by itself.
 */
public final class ConnectionHoarder implements AutoCloseable {
  static final String SCRIPT =
      """
      import errno, json, resource, selectors, socket, sys, time
      host, port, n, rate, deadline = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5])
      soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
      resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
      sel = selectors.DefaultSelector()
      held, errors = [], {}
      pending = early_reset = 0
      def fail(e):
          name = errno.errorcode.get(e, str(e))
          errors[name] = errors.get(name, 0) + 1
      def settle(timeout):
          global pending, early_reset
          for key, _ in sel.select(max(timeout, 0)):
              s = key.fileobj
              sel.unregister(s)
              pending -= 1
              e = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
              if e == 0:
                  held.append(s)
              elif e == errno.ECONNRESET:  # accepted and reset before this saw it connected
                  early_reset += 1
                  s.close()
              else:
                  fail(e)
                  s.close()
      start = time.monotonic()
      for i in range(n):
          due = start + i / rate
          while time.monotonic() < due:
              settle(due - time.monotonic())
          s = socket.socket()
          s.setblocking(False)
          e = s.connect_ex((host, port))
          if e == 0:
              held.append(s)
          elif e == errno.EINPROGRESS:
              sel.register(s, selectors.EVENT_WRITE)
              pending += 1
          else:
              fail(e)
              s.close()
      end = time.monotonic() + deadline
      while pending and time.monotonic() < end:
          settle(end - time.monotonic())
      timed_out = pending
      connected = len(held) + early_reset
      time.sleep(1)  # the far side's resets of the last ones arrive
      probe = selectors.DefaultSelector()
      for s in held:
          probe.register(s, selectors.EVENT_READ)
      reset, closed = early_reset, 0
      for key, _ in probe.select(0):
          try:
              if key.fileobj.recv(1) == b"":
                  closed += 1
          except OSError:
              reset += 1
      probe.close()
      print(json.dumps({"attempted": n, "connected": connected, "reset": reset, "closed": closed,
                        "open": connected - reset - closed, "timed_out": timed_out,
                        "failed": sum(errors.values()), "errors": errors,
                        "seconds": round(time.monotonic() - start, 1)}), flush=True)
      sys.stdin.read()
      """;

  private static final Pattern COUNT = Pattern.compile("\"(\\w+)\": (\\d+)");

  private final Process process;
  private final BufferedReader out;

  private ConnectionHoarder(Process process) {
    this.process = process;
    this.out =
        new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
  }

  /**
   * Starts one hoarder in {@code pod}: {@code count} connections to {@code host}:{@code port} at
   * {@code perSecond}, each given {@code settle} to finish its handshake.
   */
  public static ConnectionHoarder start(
      TestNode node, String pod, String host, int port, int count, int perSecond, Duration settle)
      throws IOException {
    List<String> cmd =
        node.podCommand(
            pod,
            "python3",
            "-c",
            SCRIPT,
            host,
            Integer.toString(port),
            Integer.toString(count),
            Integer.toString(perSecond),
            Long.toString(settle.toSeconds()));
    return new ConnectionHoarder(
        new ProcessBuilder(cmd).redirectError(ProcessBuilder.Redirect.INHERIT).start());
  }

  /**
   * Waits for the counts line (attempted, connected, reset, closed, open, timed_out, failed,
   * seconds, and a count per errno name); blocks until the hoarder has settled every connection.
   */
  public Counts counts() throws IOException {
    String line = out.readLine();
    if (line == null) {
      throw new IOException("the hoarder ended without its counts, exit " + exitCode());
    }
    Map<String, Long> counts = new HashMap<>();
    Matcher m = COUNT.matcher(line);
    while (m.find()) {
      counts.put(m.group(1), Long.parseLong(m.group(2)));
    }
    return new Counts(Map.copyOf(counts), line);
  }

  /** The hoarder's counts by name (errno names included), and its line as printed. */
  public record Counts(Map<String, Long> values, String line) {
    public long get(String name) {
      return values.getOrDefault(name, 0L);
    }

    @Override
    public String toString() {
      return line;
    }
  }

  private String exitCode() {
    try {
      return process.waitFor(5, TimeUnit.SECONDS) ? Integer.toString(process.exitValue()) : "none";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "unknown";
    }
  }

  /** Lets go of every connection: stdin closed, then its own PID ended if it lingers. */
  @Override
  public void close() {
    try {
      process.getOutputStream().close();
    } catch (IOException e) {
      // already gone
    }
    try {
      if (!process.waitFor(5, TimeUnit.SECONDS)) {
        process.destroy();
        if (!process.waitFor(5, TimeUnit.SECONDS)) {
          process.destroyForcibly().waitFor(5, TimeUnit.SECONDS);
        }
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
