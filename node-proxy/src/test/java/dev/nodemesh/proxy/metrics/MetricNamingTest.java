package dev.nodemesh.proxy.metrics;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.accesslog.AccessLog;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.identity.TaskScheduler;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prometheus naming conventions over a real scrape with every meter registered: snake_case, a unit
 * suffix where the value has one, {@code _total} on counters, and every label in the documented set
 * ({@link ProxyMetrics#LABELS}), with no label value that is an address or a port.
 */
class MetricNamingTest {
  private static final String CLIENT_ID = "spiffe://cluster.local/ns/default/sa/client";
  private static final String ECHO_ID = "spiffe://cluster.local/ns/default/sa/echo";

  @TempDir Path tmp;
  private EventLoopGroup loops;
  private AccessLog accessLog;
  private String scrape;

  @BeforeEach
  void setUp() throws Exception {
    loops = new MultiThreadIoEventLoopGroup(2, NioIoHandler.newFactory());
    ProxyMetrics metrics = new ProxyMetrics("test-node");
    ProxyHealth health =
        ProxyHealth.bind(
            metrics,
            Map.of("io", loops),
            new dev.nodemesh.proxy.liveness.LoopWatchdog(
                Map.of("io", loops),
                System::nanoTime,
                Duration.ofSeconds(5),
                Duration.ZERO,
                reason -> {}),
            () -> 3,
            () -> 4,
            () -> true);
    health.configRejected().increment();
    health.bindXds(() -> true);
    health.bindCapture(dev.nodemesh.model.config.ConfigSnapshot::empty);
    // Every other place that registers proxy meters: L7, the access log, certificates.
    metrics
        .http(
            new TrafficLabels(
                "source", "client", "default", "echo-1", "default", "echo", CLIENT_ID, ECHO_ID))
        .record(200, 3_000_000, 100, 2048, "0");
    // A Service's TrafficPolicy meters (breaker, ejections, rate limit, retries, budget).
    dev.nodemesh.proxy.l7.resilience.TrafficState.of(metrics.registry())
        .service(new dev.nodemesh.model.config.NamespacedName("default", "echo"), null);
    accessLog =
        AccessLog.start(
            new AccessLogSettings(true, tmp.resolve("access.log"), 1.0),
            "test-node",
            metrics.registry());
    new CertificateManager(
        "test-node",
        "cluster.local",
        Duration.ZERO,
        request -> new CompletableFuture<>(),
        new TaskScheduler() {
          @Override
          public void execute(Runnable task) {}

          @Override
          public Cancellable schedule(Runnable task, Duration delay) {
            return () -> {};
          }
        },
        Clock.systemUTC(),
        () -> 0.5,
        metrics.registry());
    for (String reporter : List.of("source", "destination")) {
      ConnectionMeters m =
          metrics.connection(
              new TrafficLabels(
                  reporter, "client", "default", "echo-1", "default", "echo", CLIENT_ID, ECHO_ID));
      m.connected(120_000);
      m.sentBytes().increment(10);
      m.receivedBytes().increment(20);
      m.failed().increment();
      m.ended(2_000_000_000L);
      metrics
          .policyDenials(reporter, CLIENT_ID, "echo-1", "default", "denied_by_policy")
          .increment();
    }
    dev.nodemesh.proxy.tunnel.TunnelMetrics tunnel =
        new dev.nodemesh.proxy.tunnel.TunnelMetrics(metrics.registry());
    for (dev.nodemesh.proxy.tunnel.TunnelMetrics.Side side :
        List.of(tunnel.client(), tunnel.server())) {
      side.connectionsOpen().incrementAndGet();
      side.streamsOpened().increment();
      side.handshakeFailures().increment();
      side.streamsRefused().increment();
    }
    new dev.nodemesh.proxy.drain.Downstreams(metrics.registry());
    // Per-pod budgets: the limit and a refusal of each reason.
    dev.nodemesh.proxy.budget.PodBudgets budgets =
        new dev.nodemesh.proxy.budget.PodBudgets(10, 10, metrics.registry());
    dev.nodemesh.proxy.agent.EnrolledPod pod =
        new dev.nodemesh.proxy.agent.EnrolledPod(
            "uid-1",
            "client",
            "default",
            "/proc/self/ns/net",
            List.of(java.net.InetAddress.getByName("10.0.0.1")),
            dev.nodemesh.bpf.netns.NetworkNamespace.home());
    for (dev.nodemesh.proxy.budget.PodBudgets.Reason reason :
        dev.nodemesh.proxy.budget.PodBudgets.Reason.values()) {
      budgets.of(pod).refused(dev.nodemesh.proxy.budget.Direction.OUTBOUND, reason);
    }
    dev.nodemesh.proxy.transport.ConnectionTimeouts.counter(
            metrics.registry(), dev.nodemesh.proxy.transport.ConnectionTimeouts.TCP_IDLE)
        .increment();
    scrape = metrics.scrape();
  }

  @AfterEach
  void tearDown() {
    if (accessLog != null) {
      accessLog.close();
    }
    loops.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }

  /**
   * Every meter name written in the node proxy's sources is in the scrape this test checks, so a
   * meter added anywhere in the module is held to the conventions (or fails here until it is
   * registered above).
   */
  @Test
  void theScrapeHoldsEveryMeterTheModuleDeclares() throws Exception {
    var names = PrometheusConventions.meterNamesIn(PrometheusConventions.mainSources("node-proxy"));
    assertTrue(names.size() > 30, names.toString());
    assertTrue(names.contains("nodemesh.xds.connected"), names.toString());
    assertEquals(List.of(), PrometheusConventions.missingFamilies(scrape, names), scrape);
  }

  @Test
  void everyFamilyFollowsPrometheusConventions() {
    assertTrue(scrape.split("# TYPE ").length > 10, scrape);
    assertEquals(List.of(), PrometheusConventions.nameProblems(scrape), scrape);
  }

  @Test
  void everyLabelIsDocumentedAndBounded() {
    assertEquals(List.of(), PrometheusConventions.labelProblems(scrape, "test-node"), scrape);
    assertTrue(scrape.contains("destination_workload=\"echo-1\""), scrape);
    assertTrue(
        scrape.contains(
            "nodemesh_policy_denials_total{destination_namespace=\"default\","
                + "destination_workload=\"echo-1\",node=\"test-node\","
                + "reason=\"denied_by_policy\",reporter=\"source\",source_principal=\""
                + CLIENT_ID
                + "\"} 1.0"),
        scrape);
    assertTrue(
        scrape.contains(
            "nodemesh_tunnel_handshake_failures_total{node=\"test-node\",reporter=\"destination\"} 1.0"),
        scrape);
  }

  @Test
  void requestSizesAndGrpcStatusAreRecorded() {
    String labels =
        "destination_namespace=\"default\",destination_principal=\""
            + ECHO_ID
            + "\",destination_service=\"echo\",destination_workload=\"echo-1\",";
    assertTrue(
        scrape.contains(
            "nodemesh_grpc_responses_total{"
                + labels
                + "grpc_status=\"OK\",node=\"test-node\",reporter=\"source\",source_namespace="
                + "\"default\",source_principal=\""
                + CLIENT_ID
                + "\",source_workload=\"client\"} 1.0"),
        scrape);
    // Sizes are histograms in bytes with fixed buckets, like the latencies.
    assertTrue(
        scrape
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_http_response_size_bytes_bucket{" + labels)
                        && l.contains("le=\"1024.0\"")),
        scrape);
    assertEquals(0, HttpMeters.grpcIndex("0"));
    assertEquals(16, HttpMeters.grpcIndex("16"));
    assertEquals("invalid", HttpMeters.GRPC_CODES[HttpMeters.grpcIndex("17")]);
    assertEquals("invalid", HttpMeters.GRPC_CODES[HttpMeters.grpcIndex("x")]);
    // The label values are gRPC's names, indexed by code.
    assertEquals("OK", HttpMeters.GRPC_CODES[0]);
    assertEquals("PERMISSION_DENIED", HttpMeters.GRPC_CODES[7]);
    assertEquals("UNAUTHENTICATED", HttpMeters.GRPC_CODES[16]);
    assertEquals(18, HttpMeters.GRPC_CODES.length);
  }

  @Test
  void conventionsCatchCommonMistakes() {
    assertEquals(
        List.of("nodemesh.made.up"),
        PrometheusConventions.missingFamilies(scrape, java.util.Set.of("nodemesh.made.up")));
    String bad =
        """
        # TYPE nodemesh_requests counter
        nodemesh_requests{node="n"} 1.0
        # TYPE nodemesh_latency_ms histogram
        nodemesh_latency_ms_bucket{node="n",peer_ip="10.0.0.1",le="1.0"} 1
        # TYPE nodemesh_heap_memory gauge
        nodemesh_heap_memory 5.0
        """;
    List<String> names = PrometheusConventions.nameProblems(bad);
    assertTrue(names.contains("nodemesh_requests: a counter without _total"), names.toString());
    assertTrue(names.contains("nodemesh_latency_ms: histogram without a unit"), names.toString());
    assertTrue(names.contains("nodemesh_heap_memory: a size not in _bytes"), names.toString());
    List<String> labels = PrometheusConventions.labelProblems(bad, "n");
    assertTrue(
        labels.contains("nodemesh_latency_ms_bucket: undocumented label peer_ip"),
        labels.toString());
    assertTrue(
        labels.contains("nodemesh_latency_ms_bucket: label peer_ip=10.0.0.1 looks like an address"),
        labels.toString());
    assertTrue(labels.contains("nodemesh_heap_memory: no node label"), labels.toString());
  }

  @Test
  void latencyHistogramsResolveSubMillisecondAndMinutes() {
    String connect = "nodemesh_tcp_connect_duration_seconds_bucket{";
    assertTrue(scrape.contains(connect), scrape);
    List<String> les = new ArrayList<>();
    for (String line : scrape.split("\n")) {
      if (line.startsWith(connect) && line.contains("reporter=\"source\"")) {
        Matcher m = Pattern.compile("le=\"([^\"]+)\"").matcher(line);
        assertTrue(m.find(), line);
        les.add(m.group(1));
      }
    }
    assertEquals(Double.parseDouble(les.get(0)), 50e-6, 1e-12, les.toString());
    assertTrue(les.stream().anyMatch(le -> !le.equals("+Inf") && Double.parseDouble(le) == 60));
    // The 120 µs connect falls in the 250 µs bucket, not the 100 µs one.
    assertEquals(List.of("0", "1"), counts(connect, "source", List.of("1.0E-4", "2.5E-4")));
  }

  private List<String> counts(String prefix, String reporter, List<String> les) {
    List<String> out = new ArrayList<>();
    for (String le : les) {
      for (String line : scrape.split("\n")) {
        if (line.startsWith(prefix)
            && line.contains("reporter=\"" + reporter + "\"")
            && line.contains("le=\"" + le + "\"")) {
          out.add(line.substring(line.lastIndexOf(' ') + 1));
        }
      }
    }
    return out;
  }
}
