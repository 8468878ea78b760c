package dev.nodemesh.control.xds;

import dev.nodemesh.control.store.ResourceType;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Timer;
import java.time.Duration;
import java.util.Locale;
import java.util.function.IntSupplier;

/**
 * The xDS server's meters: responses pushed and resources in them, NACKs, connected node streams,
 * and push latency (from the first store change in a push to the node's ACK of it).
 */
public final class XdsMetrics {
  /** 1 ms to 60 s: a debounced push on a quiet cluster is ~100 ms; a slow node takes seconds. */
  public static final Duration[] PUSH_LATENCY_BUCKETS = {
    Duration.ofMillis(1),
    Duration.ofMillis(5),
    Duration.ofMillis(10),
    Duration.ofMillis(25),
    Duration.ofMillis(50),
    Duration.ofMillis(100),
    Duration.ofMillis(150),
    Duration.ofMillis(250),
    Duration.ofMillis(500),
    Duration.ofSeconds(1),
    Duration.ofMillis(2_500),
    Duration.ofSeconds(5),
    Duration.ofSeconds(10),
    Duration.ofSeconds(30),
    Duration.ofSeconds(60)
  };

  private final Counter[] pushes = new Counter[ResourceType.values().length];
  private final Counter[] resources = new Counter[ResourceType.values().length];
  private final Counter[] nacks = new Counter[ResourceType.values().length];
  private final Timer latency;
  private final Counter[] refused = new Counter[StreamRefusal.values().length];

  public XdsMetrics(MeterRegistry registry, IntSupplier connectedStreams) {
    for (ResourceType t : ResourceType.values()) {
      String type = t.name().toLowerCase(Locale.ROOT);
      pushes[t.ordinal()] =
          Counter.builder("nodemesh.xds.pushes")
              .description("Delta responses sent to node proxies")
              .tag("type", type)
              .register(registry);
      resources[t.ordinal()] =
          Counter.builder("nodemesh.xds.resources.sent")
              .description("Resources (adds, updates and removals) in delta responses")
              .tag("type", type)
              .register(registry);
      nacks[t.ordinal()] =
          Counter.builder("nodemesh.xds.nacks")
              .description("Delta responses a node proxy rejected")
              .tag("type", type)
              .register(registry);
    }
    for (StreamRefusal r : StreamRefusal.values()) {
      // Every reason at zero, so a rate() has a series before the first refusal.
      refused[r.ordinal()] =
          Counter.builder("nodemesh.xds.streams.refused")
              .description("xDS streams refused for their node credential, by reason")
              .tag("reason", r.label())
              .register(registry);
    }
    Gauge.builder("nodemesh.xds.connected.nodes", connectedStreams::getAsInt)
        .description("Open node proxy streams")
        .register(registry);
    // Fixed buckets (not client-side percentiles) so Prometheus can aggregate over replicas and
    // the dashboard's histogram_quantile sees the same le values everywhere.
    latency =
        Timer.builder("nodemesh.xds.push.latency")
            .description("From a resource change to a node's ACK of the push that carries it")
            .serviceLevelObjectives(PUSH_LATENCY_BUCKETS)
            .register(registry);
  }

  void pushed(ResourceType type, int resourceCount) {
    pushes[type.ordinal()].increment();
    resources[type.ordinal()].increment(resourceCount);
  }

  void nacked(ResourceType type) {
    nacks[type.ordinal()].increment();
  }

  void acked(long latencyNanos) {
    latency.record(Duration.ofNanos(Math.max(0, latencyNanos)));
  }

  void refused(StreamRefusal reason) {
    refused[reason.ordinal()].increment();
  }

  public double refusedCount(StreamRefusal reason) {
    return refused[reason.ordinal()].count();
  }

  public double pushes(ResourceType type) {
    return pushes[type.ordinal()].count();
  }

  public double resourcesSent(ResourceType type) {
    return resources[type.ordinal()].count();
  }

  public double nacks(ResourceType type) {
    return nacks[type.ordinal()].count();
  }

  public long acks() {
    return latency.count();
  }
}
