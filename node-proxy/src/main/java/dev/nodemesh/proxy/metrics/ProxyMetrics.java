package dev.nodemesh.proxy.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The node proxy's metrics, scraped from the admin port. Meters are looked up once per connection
 * (cached per label set), and updated from event loops without locks.
 *
 * <p>Names (Prometheus form): {@code nodemesh_tcp_connections_opened_total}, {@code
 * nodemesh_tcp_connections_closed_total}, {@code nodemesh_tcp_connections_failed_total}, {@code
 * nodemesh_tcp_sent_bytes_total} (towards the destination), {@code
 * nodemesh_tcp_received_bytes_total} (back from it), {@code nodemesh_tcp_connections_open} (gauge),
 * and two histograms with {@link #LATENCY_BUCKETS}: {@code
 * nodemesh_tcp_connection_duration_seconds} and {@code nodemesh_tcp_connect_duration_seconds}
 * (routed to upstream connected: the proxy's added latency, see {@link ConnectionMeters}). Labels:
 * see {@link TrafficLabels}, plus {@code node} on every series. Proxy health: {@link ProxyHealth}.
 * Every label any series may carry is in {@link #LABELS}; the naming test enforces it.
 */
public final class ProxyMetrics {
  /**
   * Fixed buckets from 50 µs to 60 s: sub-millisecond proxy hops and multi-second connections on
   * one scale, so a p99 can be read wherever it lands. Fixed (not Micrometer's percentile
   * histogram) so that dashboards and recording rules can rely on the same {@code le} values.
   */
  public static final List<Duration> LATENCY_BUCKETS =
      List.of(
          Duration.ofNanos(50_000),
          Duration.ofNanos(100_000),
          Duration.ofNanos(250_000),
          Duration.ofNanos(500_000),
          Duration.ofMillis(1),
          Duration.ofNanos(2_500_000),
          Duration.ofMillis(5),
          Duration.ofMillis(10),
          Duration.ofMillis(25),
          Duration.ofMillis(50),
          Duration.ofMillis(100),
          Duration.ofMillis(250),
          Duration.ofMillis(500),
          Duration.ofSeconds(1),
          Duration.ofMillis(2_500),
          Duration.ofSeconds(5),
          Duration.ofSeconds(10),
          Duration.ofSeconds(30),
          Duration.ofSeconds(60));

  /**
   * Body size buckets, powers of four from 64 B to 16 MiB (bodiless requests land in the first;
   * Micrometer takes no 0 bound).
   */
  static final double[] SIZE_BUCKETS = {
    64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216
  };

  /**
   * Every label a nodemesh series may carry. {@code node}: the proxy's node; traffic labels from
   * {@link TrafficLabels}; {@code reason}: why policy denied a connection (a fixed word); {@code
   * response_code_class}: 1xx..5xx, none or incomplete; {@code grpc_status}: a gRPC code name (or
   * invalid); {@code event_loop_group}/{@code event_loop}: "accept"/"io" and the loop's index;
   * {@code area}/{@code id}: JVM memory pools; {@code le}: histogram buckets. None is derived from
   * an address or port.
   */
  public static final List<String> LABELS =
      List.of(
          "node",
          "reporter",
          "source_workload",
          "source_namespace",
          "destination_workload",
          "destination_namespace",
          "destination_service",
          "source_principal",
          "destination_principal",
          "reason",
          "response_code_class",
          "grpc_status",
          "event_loop_group",
          "event_loop",
          "area",
          "id",
          "outcome",
          "source",
          "le");

  private final PrometheusMeterRegistry registry;
  private final ConcurrentHashMap<TrafficLabels, ConnectionMeters> meters =
      new ConcurrentHashMap<>();
  private final ConcurrentHashMap<DenialLabels, Counter> denials = new ConcurrentHashMap<>();

  /** Labels of {@code nodemesh_policy_denials_total}: all bounded by config, none an address. */
  private record DenialLabels(
      String reporter,
      String sourcePrincipal,
      String destinationWorkload,
      String destinationNamespace,
      String reason) {}

  private final ConcurrentHashMap<TrafficLabels, HttpMeters> httpMeters = new ConcurrentHashMap<>();
  // Bumped by every release: meters held beyond one lookup are looked up again after one.
  private final AtomicInteger generation = new AtomicInteger();

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

  /**
   * Removes every series that names workload {@code namespace/name} as its source or destination
   * (traffic, HTTP, denial, tunnel and budget meters alike) and forgets the cached meters, so a pod
   * that has gone leaves nothing behind: with pods coming and going, series would otherwise only
   * grow. A connection of that workload still open keeps counting into meters no longer scraped; a
   * new one registers fresh series. Called on pod removal (off the event loops).
   */
  public void release(String namespace, String name) {
    meters.keySet().removeIf(l -> names(l, namespace, name));
    httpMeters.keySet().removeIf(l -> names(l, namespace, name));
    denials
        .keySet()
        .removeIf(
            l ->
                l.destinationWorkload().equals(name) && l.destinationNamespace().equals(namespace));
    for (Meter m : registry.getMeters()) {
      Meter.Id id = m.getId();
      if ((name.equals(id.getTag("source_workload"))
              && namespace.equals(id.getTag("source_namespace")))
          || (name.equals(id.getTag("destination_workload"))
              && namespace.equals(id.getTag("destination_namespace")))) {
        registry.remove(m);
      }
    }
    generation.incrementAndGet();
  }

  /**
   * Changes after every {@link #release}: whoever keeps meters between requests (a connection's
   * {@code RequestMeters}) looks them up again when it differs from what it saw then, so a series a
   * release dropped is registered again rather than counted into a meter no longer scraped.
   */
  public int generation() {
    return generation.get();
  }

  private static boolean names(TrafficLabels l, String namespace, String name) {
    return (l.sourceWorkload().equals(name) && l.sourceNamespace().equals(namespace))
        || (l.destinationWorkload().equals(name) && l.destinationNamespace().equals(namespace));
  }

  public ConnectionMeters connection(TrafficLabels labels) {
    return meters.computeIfAbsent(labels, this::create);
  }

  /**
   * {@code nodemesh_policy_denials_total}: connections reset because authorization denied them.
   *
   * @param reporter "destination" (inbound capture, HBONE) or "source" (same-node outbound)
   * @param sourcePrincipal the caller's identity the authorizer judged (proven over HBONE, or the
   *     same-node source pod's from config), {@link TrafficLabels#UNKNOWN} for a plaintext caller
   * @param reason the {@code Decision}'s reason, one of a few fixed words
   */
  public Counter policyDenials(
      String reporter,
      String sourcePrincipal,
      String destinationWorkload,
      String destinationNamespace,
      String reason) {
    return denials.computeIfAbsent(
        new DenialLabels(
            reporter, sourcePrincipal, destinationWorkload, destinationNamespace, reason),
        l ->
            Counter.builder("nodemesh.policy.denials")
                .description("Connections reset because authorization policy denied them")
                .tags(
                    "reporter", l.reporter(),
                    "source_principal", l.sourcePrincipal(),
                    "destination_workload", l.destinationWorkload(),
                    "destination_namespace", l.destinationNamespace(),
                    "reason", l.reason())
                .register(registry));
  }

  /**
   * The L7 request meters of a label set: {@code nodemesh_http_requests_total} (plus {@code
   * response_code_class}: 1xx..5xx, none when no response was sent, incomplete when one was broken
   * off after its head), {@code nodemesh_http_request_duration_seconds} ({@link #LATENCY_BUCKETS},
   * request head received to response end), {@code nodemesh_http_request_size_bytes} and {@code
   * nodemesh_http_response_size_bytes} (bodies, {@link #SIZE_BUCKETS}), and for gRPC {@code
   * nodemesh_grpc_responses_total} (plus {@code grpc_status}).
   */
  public HttpMeters http(TrafficLabels labels) {
    return httpMeters.computeIfAbsent(labels, this::createHttp);
  }

  private HttpMeters createHttp(TrafficLabels l) {
    Tags tags = tags(l);
    Counter[] counters = new Counter[HttpMeters.CLASSES.length];
    for (int i = 0; i < counters.length; i++) {
      counters[i] =
          Counter.builder("nodemesh.http.requests")
              .description("HTTP requests proxied on the L7 path, by response code class")
              .tags(tags.and("response_code_class", HttpMeters.CLASSES[i]))
              .register(registry);
    }
    return new HttpMeters(
        counters,
        histogram(
            "nodemesh.http.request.duration",
            "Request head received to response end, retries included",
            tags),
        size("nodemesh.http.request.size", "Request body bytes received from the client", tags),
        size("nodemesh.http.response.size", "Response body bytes relayed to the client", tags),
        code ->
            Counter.builder("nodemesh.grpc.responses")
                .description("gRPC responses proxied on the L7 path, by grpc-status")
                .tags(tags.and("grpc_status", code))
                .register(registry));
  }

  private DistributionSummary size(String name, String description, Tags tags) {
    return DistributionSummary.builder(name)
        .description(description)
        .baseUnit("bytes")
        .tags(tags)
        .serviceLevelObjectives(SIZE_BUCKETS)
        .register(registry);
  }

  private static Tags tags(TrafficLabels l) {
    return Tags.of(
        "reporter", l.reporter(),
        "source_workload", l.sourceWorkload(),
        "source_namespace", l.sourceNamespace(),
        "destination_workload", l.destinationWorkload(),
        "destination_namespace", l.destinationNamespace(),
        "destination_service", l.destinationService(),
        "source_principal", l.sourcePrincipal(),
        "destination_principal", l.destinationPrincipal());
  }

  private ConnectionMeters create(TrafficLabels l) {
    Tags tags = tags(l);
    AtomicLong open = new AtomicLong();
    Gauge.builder("nodemesh.tcp.connections.open", open, AtomicLong::get)
        .description("Relayed TCP connections open now")
        .tags(tags)
        .register(registry);
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
        histogram(
            "nodemesh.tcp.connection.duration",
            "How long relayed connections lasted",
            tags,
            // Long-lived connections (pools, streams) would all land in +Inf otherwise.
            Duration.ofMinutes(5),
            Duration.ofMinutes(30)),
        histogram(
            "nodemesh.tcp.connect.duration",
            "Routed to upstream connected: the latency the proxy adds to a connection's set-up",
            tags),
        open);
  }

  private Timer histogram(String name, String description, Tags tags, Duration... extraBuckets) {
    List<Duration> buckets = new java.util.ArrayList<>(LATENCY_BUCKETS);
    buckets.addAll(List.of(extraBuckets));
    return Timer.builder(name)
        .description(description)
        .tags(tags)
        .serviceLevelObjectives(buckets.toArray(Duration[]::new))
        .register(registry);
  }
}
