package dev.nodemesh.proxy.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The node proxy's metrics, scraped from the admin port. Meters are looked up once per connection
 * (cached per label set), and updated from event loops without locks.
 *
 * <p>Names (Prometheus form): {@code nodemesh_tcp_connections_opened_total}, {@code
 * nodemesh_tcp_connections_closed_total}, {@code nodemesh_tcp_connections_failed_total}, {@code
 * nodemesh_tcp_sent_bytes_total} (towards the destination), {@code
 * nodemesh_tcp_received_bytes_total} (back from it), {@code
 * nodemesh_tcp_connection_duration_seconds} (histogram). Labels: see {@link TrafficLabels}, plus
 * {@code node} on every series.
 */
public final class ProxyMetrics {
  private final PrometheusMeterRegistry registry;
  private final ConcurrentHashMap<TrafficLabels, ConnectionMeters> meters =
      new ConcurrentHashMap<>();

  public ProxyMetrics(String nodeName) {
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    registry.config().commonTags("node", nodeName);
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  public String scrape() {
    return registry.scrape();
  }

  public ConnectionMeters connection(TrafficLabels labels) {
    return meters.computeIfAbsent(labels, this::create);
  }

  private ConnectionMeters create(TrafficLabels l) {
    Tags tags =
        Tags.of(
            "reporter", l.reporter(),
            "source_workload", l.sourceWorkload(),
            "source_namespace", l.sourceNamespace(),
            "destination_workload", l.destinationWorkload(),
            "destination_namespace", l.destinationNamespace(),
            "destination_service", l.destinationService());
    return new ConnectionMeters(
        Counter.builder("nodemesh.tcp.connections.opened")
            .description("TCP connections accepted and relayed by the proxy")
            .tags(tags)
            .register(registry),
        Counter.builder("nodemesh.tcp.connections.closed")
            .description("Relayed TCP connections that have ended")
            .tags(tags)
            .register(registry),
        Counter.builder("nodemesh.tcp.connections.failed")
            .description("Connections the proxy could not relay (upstream refused, no endpoint)")
            .tags(tags)
            .register(registry),
        Counter.builder("nodemesh.tcp.sent.bytes")
            .baseUnit("bytes")
            .description("Bytes relayed towards the destination")
            .tags(tags)
            .register(registry),
        Counter.builder("nodemesh.tcp.received.bytes")
            .baseUnit("bytes")
            .description("Bytes relayed back from the destination")
            .tags(tags)
            .register(registry),
        Timer.builder("nodemesh.tcp.connection.duration")
            .description("How long relayed connections lasted")
            .tags(tags)
            .serviceLevelObjectives(
                Duration.ofMillis(1),
                Duration.ofMillis(10),
                Duration.ofMillis(100),
                Duration.ofSeconds(1),
                Duration.ofSeconds(10),
                Duration.ofSeconds(60),
                Duration.ofMinutes(10))
            .register(registry));
  }
}
