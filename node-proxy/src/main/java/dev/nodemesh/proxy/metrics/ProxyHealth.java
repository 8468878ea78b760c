package dev.nodemesh.proxy.metrics;

import com.sun.management.OperatingSystemMXBean;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.liveness.LoopWatchdog;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.ByteBufAllocatorMetricProvider;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.SingleThreadEventExecutor;
import io.netty.util.internal.PlatformDependent;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The proxy's own health as gauges: event-loop queue depth and lag, direct memory, open file
 * descriptors, CPU and resident memory, config version and age, enrolled pods, readiness. Read at
 * scrape time on the admin thread; only the watchdog's lag probe runs on the loops ({@link
 * LoopWatchdog}).
 *
 * <p>Names: {@code nodemesh_event_loop_pending_tasks}, {@code nodemesh_event_loop_lag_seconds},
 * {@code nodemesh_netty_direct_memory_used_bytes}, {@code nodemesh_process_open_fds}, {@code
 * nodemesh_process_cpu_seconds_total}, {@code nodemesh_process_resident_memory_bytes}, {@code
 * nodemesh_config_version}, {@code nodemesh_config_age_seconds}, {@code nodemesh_config_source},
 * {@code nodemesh_config_rejected_total}, {@code nodemesh_xds_initial_fetch_timeouts_total}, {@code
 * nodemesh_xds_connected} (xDS mode only), {@code nodemesh_pods_enrolled}, {@code
 * nodemesh_proxy_ready}, {@code nodemesh_allocation_failures_total} (direct memory refused, see
 * {@link FatalErrors}), plus Micrometer's {@code jvm_memory_*}. Certificate expiry and rotations
 * are {@code CertificateManager}'s, policy denials {@link ProxyMetrics#policyDenials}, tunnels
 * {@code TunnelMetrics}, the access log {@code AccessLog}.
 */
public final class ProxyHealth {
  private static final Path PROC_FD = Path.of("/proc/self/fd");
  private static final Path PROC_STATM = Path.of("/proc/self/statm");
  private static final long PAGE_SIZE = 4096;

  private final AtomicLong configAppliedNanos = new AtomicLong(System.nanoTime());
  private final LongSupplier configVersion;
  private final AtomicLong lastSeenVersion;
  private final MeterRegistry registry;
  private final Counter configRejected;
  private final Counter initialFetchTimeouts;
  private volatile String configSource = "none";

  /** The values of {@code nodemesh_config_source}'s {@code source} label. */
  public static final List<String> CONFIG_SOURCES = List.of("saved", "xds", "local");

  private ProxyHealth(MeterRegistry registry, LongSupplier configVersion) {
    this.registry = registry;
    this.configVersion = configVersion;
    this.lastSeenVersion = new AtomicLong(configVersion.getAsLong());
    this.configRejected =
        Counter.builder("nodemesh.config.rejected")
            .description("Config updates rejected as invalid (the previous config stays)")
            .register(registry);
    this.initialFetchTimeouts =
        Counter.builder("nodemesh.xds.initial.fetch.timeouts")
            .description(
                "First configs applied after the initial fetch timeout without every resource"
                    + " kind (the missing kinds empty; they are named in the log)")
            .register(registry);
  }

  /**
   * Registers every health gauge. {@code groups} maps a group name ("accept", "io") to its loops,
   * which {@code watchdog} watches (their lag gauges read it).
   */
  public static ProxyHealth bind(
      ProxyMetrics metrics,
      Map<String, EventLoopGroup> groups,
      LoopWatchdog watchdog,
      LongSupplier configVersion,
      LongSupplier podsEnrolled,
      BooleanSupplier ready) {
    MeterRegistry r = metrics.registry();
    ProxyHealth health = new ProxyHealth(r, configVersion);
    groups.forEach((name, group) -> bindLoops(r, name, group, watchdog));
    FunctionCounter.builder(
            "nodemesh.allocation.failures",
            FatalErrors.class,
            c -> FatalErrors.allocationFailures())
        .description(
            "Direct-memory allocations refused by Netty's limit; the connection asking was closed")
        .register(r);
    Gauge.builder("nodemesh.netty.direct.memory.used", ProxyHealth::directMemoryUsed)
        .baseUnit("bytes")
        .description("Direct memory held by Netty's buffer allocator")
        .strongReference(true)
        .register(r);
    Gauge.builder("nodemesh.process.open.fds", ProxyHealth::openFds)
        .description("Open file descriptors of the proxy process (/proc/self/fd)")
        .strongReference(true)
        .register(r);
    Gauge.builder("nodemesh.process.resident.memory", ProxyHealth::residentBytes)
        .baseUnit("bytes")
        .description("Resident set size of the proxy process (/proc/self/statm)")
        .strongReference(true)
        .register(r);
    OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    FunctionCounter.builder("nodemesh.process.cpu", os, o -> o.getProcessCpuTime() / 1e9)
        .baseUnit("seconds")
        .description("CPU time (user + system) used by the proxy process")
        .register(r);
    new JvmMemoryMetrics().bindTo(r);
    Gauge.builder("nodemesh.config.version", configVersion, s -> s.getAsLong())
        .description("Version of the config snapshot in force")
        .strongReference(true)
        .register(r);
    Gauge.builder("nodemesh.config.age", health, ProxyHealth::configAgeSeconds)
        .baseUnit("seconds")
        .description(
            "Time since the config in force was accepted (a saved one: by the proxy that saved"
                + " it; before any config: since start)")
        .strongReference(true)
        .register(r);
    for (String source : CONFIG_SOURCES) {
      Gauge.builder("nodemesh.config.source", health, h -> source.equals(h.configSource) ? 1 : 0)
          .tag("source", source)
          .description(
              "1 for where the config in force came from: saved (the node's last known good,"
                  + " loaded at start), xds or local (a config directory); all 0 before any")
          .strongReference(true)
          .register(r);
    }
    Gauge.builder("nodemesh.pods.enrolled", podsEnrolled, s -> s.getAsLong())
        .description("Pods enrolled on this node")
        .strongReference(true)
        .register(r);
    Gauge.builder("nodemesh.proxy.ready", ready, s -> s.getAsBoolean() ? 1 : 0)
        .description("1 when config is synced and every pod of this node is enrolled (/ready)")
        .strongReference(true)
        .register(r);
    return health;
  }

  /** {@code nodemesh_config_rejected_total}: bumped by the config source for each bad update. */
  public Counter configRejected() {
    return configRejected;
  }

  /** {@code nodemesh_xds_initial_fetch_timeouts_total}. */
  public Counter initialFetchTimeouts() {
    return initialFetchTimeouts;
  }

  /**
   * {@code nodemesh_config_uncaptured_strict_workloads}: workloads outside the capture scope that a
   * STRICT PeerAuthentication covers. Nothing enforces mTLS for them (no proxy serves them, other
   * nodes reach them in plaintext), so a value above 0 is an operator's alert, not an outage.
   */
  public void bindCapture(Supplier<ConfigSnapshot> snapshot) {
    Gauge.builder(
            "nodemesh.config.uncaptured.strict.workloads",
            snapshot,
            s -> s.get().uncapturedUnderStrict().size())
        .description("Uncaptured workloads a STRICT PeerAuthentication covers (not enforceable)")
        .strongReference(true)
        .register(registry);
  }

  /**
   * {@code nodemesh_xds_connected}: 1 while the xDS stream to the control plane is up, 0 while
   * reconnecting. Registered only by a proxy that takes its config over xDS; a proxy reading a
   * config directory has no such series (rather than a 0 that would look like an outage).
   */
  public void bindXds(BooleanSupplier connected) {
    Gauge.builder("nodemesh.xds.connected", connected, c -> c.getAsBoolean() ? 1 : 0)
        .description("1 while the xDS stream to the control plane is up, 0 while reconnecting")
        .strongReference(true)
        .register(registry);
  }

  /** A new config snapshot is in force: its age starts at zero. */
  public void configApplied() {
    lastSeenVersion.set(configVersion.getAsLong());
    configAppliedNanos.set(System.nanoTime());
  }

  /**
   * A new config snapshot from {@code source} (one of {@link #CONFIG_SOURCES}) is in force, {@code
   * age} old already (a saved snapshot's time since it was accepted; zero for a fresh one).
   */
  public void configApplied(String source, Duration age) {
    if (!CONFIG_SOURCES.contains(source)) {
      throw new IllegalArgumentException("unknown config source " + source);
    }
    lastSeenVersion.set(configVersion.getAsLong());
    configAppliedNanos.set(System.nanoTime() - Math.max(0, age.toNanos()));
    configSource = source;
  }

  /**
   * Exact when the config source calls {@link #configApplied}; a source that swaps the snapshot
   * without telling (the xDS client) is noticed here as a version change, so its age is late by at
   * most one scrape interval.
   */
  private double configAgeSeconds() {
    long version = configVersion.getAsLong();
    if (lastSeenVersion.getAndSet(version) != version) {
      configAppliedNanos.set(System.nanoTime());
    }
    return (System.nanoTime() - configAppliedNanos.get()) / 1e9;
  }

  private static void bindLoops(
      MeterRegistry r, String group, EventLoopGroup loops, LoopWatchdog watchdog) {
    int i = 0;
    for (EventExecutor e : loops) {
      String index = Integer.toString(i++);
      if (e instanceof SingleThreadEventExecutor s) {
        Gauge.builder(
                "nodemesh.event.loop.pending.tasks", s, SingleThreadEventExecutor::pendingTasks)
            .description("Tasks queued on an event loop, waiting to run")
            .tags("event_loop_group", group, "event_loop", index)
            .register(r);
      }
      int at = i - 1;
      Gauge.builder("nodemesh.event.loop.lag", watchdog, w -> w.lagSeconds(group, at))
          .baseUnit("seconds")
          .description(
              "How long the watchdog's latest probe waited in an event loop's queue (or has been"
                  + " waiting, if it has not run yet)")
          .strongReference(true)
          .tags("event_loop_group", group, "event_loop", index)
          .register(r);
    }
  }

  static double directMemoryUsed() {
    if (ByteBufAllocator.DEFAULT instanceof ByteBufAllocatorMetricProvider p) {
      return p.metric().usedDirectMemory();
    }
    return PlatformDependent.usedDirectMemory();
  }

  static double openFds() {
    try (Stream<Path> fds = Files.list(PROC_FD)) {
      return fds.count();
    } catch (IOException e) {
      return Double.NaN;
    }
  }

  static double residentBytes() {
    try {
      String[] statm = Files.readString(PROC_STATM).trim().split(" ");
      return Long.parseLong(statm[1]) * PAGE_SIZE;
    } catch (IOException | RuntimeException e) {
      return Double.NaN;
    }
  }
}
