package dev.nodemesh.proxy.accesslog;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.ObjectWriter;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.util.internal.PlatformDependent;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Clock;
import java.util.Queue;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.DoubleSupplier;
import java.util.function.LongSupplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The access log: event loops hand finished {@link ConnectionLog}s to a bounded lock-free queue
 * (Netty's MPSC queue) and never wait; one daemon thread, {@code nodemesh-accesslog}, turns them
 * into JSON lines and writes them, flushing whenever the queue runs dry. When the queue is full the
 * line is dropped and counted in {@code nodemesh_access_log_dropped_total}: a slow disk costs log
 * lines, never traffic. Sampling is decided once per connection in {@link #begin}, so an unsampled
 * connection allocates nothing for the log.
 *
 * <p>Meters: {@code nodemesh_access_log_written_total}, {@code nodemesh_access_log_dropped_total}.
 */
public final class AccessLog implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AccessLog.class);
  public static final int DEFAULT_CAPACITY = 8192;
  private static final long IDLE_PARK_NANOS = TimeUnit.MILLISECONDS.toNanos(200);
  private static final AccessLog OFF = new AccessLog();

  private final boolean enabled;
  private final double sample;
  private final DoubleSupplier random;
  private final String node;
  private final Clock clock;
  private final LongSupplier nanoClock;
  private final @Nullable Queue<AccessLogEntry> queue;
  private final @Nullable OutputStream out;
  private final boolean closeOut;
  private final @Nullable Counter written;
  private final @Nullable Counter dropped;
  private final @Nullable Thread writer;
  // Only for a log that writes: Jackson's databind and its introspection of the entry are about
  // 500 classes, loaded at every proxy start when this was built for the "off" log too (issue 19).
  private final @Nullable ObjectWriter json;
  private volatile boolean writerIdle;
  private volatile boolean closing;

  private AccessLog() {
    this.enabled = false;
    this.sample = 0;
    this.random = () -> 1;
    this.node = "";
    this.clock = Clock.systemUTC();
    this.nanoClock = System::nanoTime;
    this.queue = null;
    this.out = null;
    this.closeOut = false;
    this.written = null;
    this.dropped = null;
    this.writer = null;
    this.json = null;
  }

  private AccessLog(
      OutputStream out,
      boolean closeOut,
      double sample,
      DoubleSupplier random,
      int capacity,
      String node,
      MeterRegistry registry,
      Clock clock,
      LongSupplier nanoClock) {
    this.enabled = true;
    this.sample = sample;
    this.random = random;
    this.node = node;
    this.clock = clock;
    this.nanoClock = nanoClock;
    this.queue = PlatformDependent.newFixedMpscQueue(capacity);
    this.out = out;
    this.closeOut = closeOut;
    this.written =
        Counter.builder("nodemesh.access.log.written")
            .description("Access log lines written")
            .register(registry);
    this.dropped =
        Counter.builder("nodemesh.access.log.dropped")
            .description("Access log lines dropped because the writer fell behind (queue full)")
            .register(registry);
    this.json = new ObjectMapper().writerFor(AccessLogEntry.class);
    Thread t = new Thread(this::run, "nodemesh-accesslog");
    t.setDaemon(true);
    this.writer = t;
  }

  /** The log that logs nothing ({@code --access-log=off}). */
  public static AccessLog off() {
    return OFF;
  }

  /** Opens the target of {@code settings} and starts the writer thread (if enabled). */
  public static AccessLog start(AccessLogSettings settings, String node, MeterRegistry registry)
      throws IOException {
    if (!settings.enabled()) {
      return OFF;
    }
    Path file = settings.file();
    OutputStream out =
        file == null
            // stdout's descriptor directly: System.out would flush on every line.
            ? new FileOutputStream(FileDescriptor.out)
            : Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    AccessLog a =
        start(
            new BufferedOutputStream(out, 64 * 1024),
            file != null,
            settings.sample(),
            () -> ThreadLocalRandom.current().nextDouble(),
            DEFAULT_CAPACITY,
            node,
            registry,
            Clock.systemUTC(),
            System::nanoTime);
    log.info("access log: {}", settings);
    return a;
  }

  /** For tests: every dependency explicit (a seeded random, a small queue, any stream). */
  static AccessLog start(
      OutputStream out,
      boolean closeOut,
      double sample,
      DoubleSupplier random,
      int capacity,
      String node,
      MeterRegistry registry,
      Clock clock,
      LongSupplier nanoClock) {
    AccessLog a =
        new AccessLog(out, closeOut, sample, random, capacity, node, registry, clock, nanoClock);
    java.util.Objects.requireNonNull(a.writer).start();
    return a;
  }

  public boolean enabled() {
    return enabled;
  }

  /**
   * A record for a connection accepted now, or null when the log is off or this connection is not
   * sampled. Called on the connection's event loop.
   */
  public @Nullable ConnectionLog begin(TrafficLabels labels) {
    if (!enabled || (sample < 1 && random.getAsDouble() >= sample)) {
      return null;
    }
    return new ConnectionLog(this, clock.instant(), nanoClock.getAsLong(), labels);
  }

  String node() {
    return node;
  }

  LongSupplier nanoClock() {
    return nanoClock;
  }

  /** Queues a line without waiting: dropped and counted when the queue is full. */
  void write(AccessLogEntry entry) {
    Queue<AccessLogEntry> q = queue;
    if (q == null || closing) {
      return;
    }
    if (!q.offer(entry)) {
      java.util.Objects.requireNonNull(dropped).increment();
      return;
    }
    Thread w = writer;
    if (writerIdle && w != null) {
      LockSupport.unpark(w);
    }
  }

  public double droppedCount() {
    return dropped == null ? 0 : dropped.count();
  }

  public double writtenCount() {
    return written == null ? 0 : written.count();
  }

  private void run() {
    Queue<AccessLogEntry> q = java.util.Objects.requireNonNull(queue);
    OutputStream o = java.util.Objects.requireNonNull(out);
    Counter w = java.util.Objects.requireNonNull(written);
    ObjectWriter j = java.util.Objects.requireNonNull(json);
    while (true) {
      AccessLogEntry e = q.poll();
      if (e != null) {
        try {
          byte[] body = j.writeValueAsBytes(e);
          // Line and newline in one write: the buffer then only ever spills whole lines, so two
          // processes appending to one file (an upgrade's old and new proxy) never split a line.
          byte[] line = java.util.Arrays.copyOf(body, body.length + 1);
          line[body.length] = '\n';
          o.write(line);
          w.increment();
        } catch (IOException ex) {
          log.warn("access log write failed: {}", ex.toString());
        }
        continue;
      }
      try {
        o.flush();
      } catch (IOException ex) {
        log.warn("access log flush failed: {}", ex.toString());
      }
      if (closing) {
        return;
      }
      // Park until a producer unparks us (it checks writerIdle after offering) or a timeout;
      // re-checking the queue after raising the flag closes the race with a concurrent offer.
      writerIdle = true;
      if (q.isEmpty() && !closing) {
        LockSupport.parkNanos(this, IDLE_PARK_NANOS);
      }
      writerIdle = false;
    }
  }

  /** Writes what is queued, then stops the writer and closes a file target. */
  @Override
  public void close() {
    Thread t = writer;
    if (t == null || closing) {
      return;
    }
    closing = true;
    LockSupport.unpark(t);
    try {
      t.join(TimeUnit.SECONDS.toMillis(5));
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    OutputStream o = out;
    if (o != null) {
      try {
        if (closeOut) {
          o.close();
        } else {
          o.flush();
        }
      } catch (IOException e) {
        log.warn("closing the access log: {}", e.toString());
      }
    }
  }
}
