package dev.nodemesh.proxy.testing;

import dev.nodemesh.proxy.testing.PodSockets.Conn;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A victim pod's fixed-rate load for hostile-neighbour tests: one HTTP/1.1 GET per period, each on
 * a new connection of the pod's app ({@link TestNode#podConnect}), taking the targets in turn (e.g.
 * a Service VIP for the L7 path and an endpoint IP for L4). Every request must be answered 200
 * within {@link #TIMEOUT}; anything else is an error, with its reason kept. Open loop: a scheduler
 * thread starts each request on its own pool at its time, so a stalled request does not hold the
 * next one back, and a latency is counted from when the request was due, not from when it started.
 *
 * <p>Both interception modes: in eBPF mode each connection is made by the pod's socket helper in
 * the node's cgroup ({@link PodSockets}), one connect at a time, so a connect that stalls holds the
 * next ones back (each counts from when it was due, and one later than {@link #TIMEOUT} is an
 * error). Latencies are for printing: tests assert on errors, never on time.
 */
public final class VictimLoad implements AutoCloseable {
  /** Generous: a request this late on a loaded 2-core machine is an outage, not a slow answer. */
  public static final Duration TIMEOUT = Duration.ofSeconds(10);

  private final TestNode node;
  private final String pod;
  private final List<InetSocketAddress> targets;
  private final String host;
  private final ScheduledExecutorService ticks;
  private final ExecutorService requests;
  private final AtomicInteger seq = new AtomicInteger();
  private final ConcurrentLinkedQueue<Long> latencies = new ConcurrentLinkedQueue<>();
  private final ConcurrentLinkedQueue<String> errors = new ConcurrentLinkedQueue<>();

  private VictimLoad(TestNode node, String pod, List<InetSocketAddress> targets, String host) {
    this.node = node;
    this.pod = pod;
    this.targets = List.copyOf(targets);
    this.host = host;
    this.ticks =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "victim-load-ticks");
              t.setDaemon(true);
              return t;
            });
    AtomicInteger n = new AtomicInteger();
    this.requests =
        Executors.newFixedThreadPool(
            32,
            r -> {
              Thread t = new Thread(r, "victim-load-" + n.incrementAndGet());
              t.setDaemon(true);
              return t;
            });
  }

  /**
   * Starts one request every {@code period} from {@code pod} of {@code node}, Host {@code host}.
   */
  public static VictimLoad start(
      TestNode node, String pod, Duration period, List<InetSocketAddress> targets, String host) {
    VictimLoad load = new VictimLoad(node, pod, targets, host);
    long periodNanos = period.toNanos();
    long origin = System.nanoTime();
    var unused =
        load.ticks.scheduleAtFixedRate(
            () -> {
              int i = load.seq.getAndIncrement();
              long due = origin + i * periodNanos;
              load.requests.execute(() -> load.request(i, due));
            },
            0,
            periodNanos,
            TimeUnit.NANOSECONDS);
    return load;
  }

  private void request(int i, long due) {
    InetSocketAddress target = targets.get(i % targets.size());
    long dialled = System.nanoTime();
    try (Conn ch = node.podConnect(pod, target.getAddress().getHostAddress(), target.getPort())) {
      // The pod's connect has a bound of its own (none in iptables mode, 15 s in eBPF mode's
      // helper); later than TIMEOUT is an error here whichever way it was made.
      long took = System.nanoTime() - dialled;
      if (took > TIMEOUT.toNanos()) {
        errors.add(target + " #" + i + ": connected only after " + (took / 1_000_000) + " ms");
        return;
      }
      ch.setReadTimeout(TIMEOUT);
      ByteBuffer request =
          ByteBuffer.wrap(
              ("GET /victim/" + i + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n")
                  .getBytes(StandardCharsets.US_ASCII));
      while (request.hasRemaining()) {
        ch.write(request);
      }
      ByteBuffer head = ByteBuffer.allocate(12);
      while (head.hasRemaining() && ch.read(head) >= 0) {
        // until the status line's first 12 bytes or the end
      }
      String status = new String(head.array(), 0, head.position(), StandardCharsets.US_ASCII);
      // The rest, to the server's close: the answer is complete only then.
      ByteBuffer rest = ByteBuffer.allocate(4096);
      while (ch.read(rest.clear()) >= 0) {
        // discarded
      }
      if (!status.equals("HTTP/1.1 200")) {
        errors.add(target + " #" + i + ": " + (status.isEmpty() ? "closed" : status));
        return;
      }
      latencies.add(System.nanoTime() - due);
    } catch (IOException | RuntimeException e) {
      errors.add(target + " #" + i + ": " + e);
    }
  }

  /** What the victim saw; latencies in microseconds, from when each request was due. */
  public record Result(int requests, List<String> errors, long p50Micros, long p99Micros) {
    @Override
    public String toString() {
      return requests
          + " requests, "
          + errors.size()
          + " errors, p50 "
          + p50Micros
          + " µs, p99 "
          + p99Micros
          + " µs"
          + (errors.isEmpty()
              ? ""
              : ", first errors " + errors.subList(0, Math.min(5, errors.size())));
    }
  }

  /** Stops starting requests, waits for those under way, and returns what the victim saw. */
  public Result stop() throws InterruptedException {
    ticks.shutdownNow();
    ticks.awaitTermination(5, TimeUnit.SECONDS);
    requests.shutdown();
    if (!requests.awaitTermination(TIMEOUT.toSeconds() * 2 + 5, TimeUnit.SECONDS)) {
      requests.shutdownNow();
      errors.add("requests still under way at the end");
    }
    List<Long> sorted = new ArrayList<>(latencies);
    Collections.sort(sorted);
    return new Result(
        sorted.size() + errors.size(),
        List.copyOf(errors),
        percentile(sorted, 0.50),
        percentile(sorted, 0.99));
  }

  private static long percentile(List<Long> sorted, double p) {
    if (sorted.isEmpty()) {
      return -1;
    }
    int at = (int) Math.ceil(p * sorted.size()) - 1;
    return sorted.get(Math.max(0, at)) / 1_000;
  }

  /**
   * Stops at once and waits for the requests under way (a read ends within {@link #TIMEOUT}): one
   * still running could open a pod socket after the test has closed the node.
   */
  @Override
  public void close() throws InterruptedException {
    ticks.shutdownNow();
    requests.shutdownNow();
    requests.awaitTermination(TIMEOUT.toSeconds() * 2 + 5, TimeUnit.SECONDS);
  }
}
