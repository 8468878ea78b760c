package dev.nodemesh.control;

import com.sun.management.OperatingSystemMXBean;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.StoreSnapshot;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/**
 * The control plane's own meters, next to {@link dev.nodemesh.control.xds.XdsMetrics}: {@code
 * nodemesh_control_store_resources} (by {@code type}, as of the latest push), {@code
 * nodemesh_control_store_revision}, {@code nodemesh_control_translation_conflicts}, {@code
 * nodemesh_control_push_compute_duration_seconds} (store snapshot to every node's delta queued: the
 * translation's cost), {@code nodemesh_control_ready} and {@code
 * nodemesh_process_cpu_seconds_total}; plus Micrometer's {@code jvm_memory_*}. Updated on the
 * control thread at each push and read by the scrape through atomics, so the scrape never touches
 * the store.
 */
final class ControlMetrics {
  /**
   * Every label a control plane series may carry: {@code type}, the resource type ({@code
   * workload}, {@code service}, ...: one of {@link ResourceType}); {@code reason}, why the CA
   * refused a request (one of {@code dev.nodemesh.control.ca.Refusal}); {@code area}/{@code id},
   * JVM memory pools; {@code le}, histogram buckets. None names a node, pod or address, so the
   * series count does not grow with the cluster (the connected-nodes gauge is a count).
   */
  static final List<String> LABELS = List.of("type", "reason", "area", "id", "le");

  private final AtomicLong[] storeSizes = new AtomicLong[ResourceType.values().length];
  private final AtomicLong revision = new AtomicLong();
  private final AtomicLong conflicts = new AtomicLong();
  private final Timer compute;

  ControlMetrics(MeterRegistry registry, BooleanSupplier ready) {
    // jvm_memory_used_bytes and CPU seconds for the dashboard. Not Micrometer's ProcessorMetrics:
    // its process_cpu_time_ns_total and *_cpu_usage break the naming conventions the proxy keeps.
    new JvmMemoryMetrics().bindTo(registry);
    OperatingSystemMXBean os = (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    FunctionCounter.builder("nodemesh.process.cpu", os, o -> o.getProcessCpuTime() / 1e9)
        .baseUnit("seconds")
        .description("CPU time (user + system) used by the control plane process")
        .register(registry);
    for (ResourceType t : ResourceType.values()) {
      AtomicLong size = new AtomicLong();
      storeSizes[t.ordinal()] = size;
      Gauge.builder("nodemesh.control.store.resources", size, AtomicLong::get)
          .description("Resources in the store, by type, as of the latest push")
          .tag("type", t.name().toLowerCase(Locale.ROOT))
          .register(registry);
    }
    Gauge.builder("nodemesh.control.store.revision", revision, AtomicLong::get)
        .description("Store revision of the latest push (grows with every change)")
        .register(registry);
    Gauge.builder("nodemesh.control.translation.conflicts", conflicts, AtomicLong::get)
        .description("Conflicts the latest translation reported (e.g. two pods with one IP)")
        .register(registry);
    Gauge.builder("nodemesh.control.ready", () -> ready.getAsBoolean() ? 1 : 0)
        .description("1 once the source has synced and the first push was computed")
        .register(registry);
    compute =
        Timer.builder("nodemesh.control.push.compute.duration")
            .description("Translating a store snapshot into every node's view and queueing it")
            .serviceLevelObjectives(
                Duration.ofNanos(100_000),
                Duration.ofNanos(500_000),
                Duration.ofMillis(1),
                Duration.ofMillis(5),
                Duration.ofMillis(10),
                Duration.ofMillis(50),
                Duration.ofMillis(100),
                Duration.ofMillis(500),
                Duration.ofSeconds(1),
                Duration.ofSeconds(5))
            .register(registry);
  }

  void pushed(StoreSnapshot snapshot, int conflictCount, long computeNanos) {
    for (ResourceType t : ResourceType.values()) {
      storeSizes[t.ordinal()].set(snapshot.of(t).size());
    }
    revision.set(snapshot.revision());
    conflicts.set(conflictCount);
    compute.record(computeNanos, TimeUnit.NANOSECONDS);
  }
}
