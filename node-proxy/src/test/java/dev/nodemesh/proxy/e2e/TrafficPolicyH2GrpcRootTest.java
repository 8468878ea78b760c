package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.testing.AccessLogLines;
import dev.nodemesh.proxy.testing.GrpcTestServer;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Predicate;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * TrafficPolicy end to end over HTTP/2 and gRPC (TrafficPolicyRootTest does HTTP/1.1): h2load (many
 * streams on one h2c prior-knowledge connection) to the Service "pool" (two HTTP/1.1 servers), and
 * python3-grpcio to the Service "grpc" (the same two pods' grpc-java servers, h2c upstream). Rate
 * limit, circuit breaker, retries and round robin each act on streams and calls; a gRPC client
 * always gets a gRPC status (trailers-only), and the rejected requests' access-log lines carry RL
 * or UO. Counts, never durations, are asserted.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TrafficPolicyH2GrpcRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String VIP = "10.97.0.30";
  static final String GRPC_VIP = "10.97.0.31";
  private static final ObjectMapper JSON = new ObjectMapper();

  @TempDir Path tmp;
  private TestNode node;
  private Path logFile;
  private HttpTestServer one;
  private HttpTestServer two;
  private GrpcTestServer grpcOne;
  private GrpcTestServer grpcTwo;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addPod("client", 10);
    node.addPod("pool-1", 11);
    node.addPod("pool-2", 12);
    one = node.serveHttp("pool-1", 8080);
    two = node.serveHttp("pool-2", 8080);
    grpcOne = node.serveGrpc("pool-1", 9090, "Who", "Slow", "Flaky");
    grpcTwo = node.serveGrpc("pool-2", 9090, "Who", "Slow", "Flaky");
    node.writeConfig(
        "pods.yaml",
        pod("client", 10, "client") + pod("pool-1", 11, "pool") + pod("pool-2", 12, "pool"));
    node.writeConfig("services.yaml", SERVICES);
    node.writeConfig("routes.yaml", ROUTES);
  }

  /** Starts the proxy with one TrafficPolicy for "pool" and one for "grpc". */
  private void start(String poolSpec, String grpcSpec) throws Exception {
    node.writeConfig("policy.yaml", policy("pool", poolSpec) + "---\n" + policy("grpc", grpcSpec));
    logFile = tmp.resolve("access.log");
    modes = mode.setUp();
    node.startProxy(
        TransportKind.EPOLL, modes.nextNode(), AccessLogSettings.parse(logFile.toString(), 1.0));
    for (String p : List.of("client", "pool-1", "pool-2")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void rateLimitAnswers429OnH2StreamsAndResourceExhaustedToGrpcWithFlagRL() throws Exception {
    String bucket = "rateLimit: {maxTokens: 20, tokensPerFill: 1, fillInterval: 1h}\n";
    start(bucket, bucket);
    Classes h2 = h2load("/plain/x", 100, 1);
    assertEquals(new Classes(20, 80, 0), h2);

    JsonNode grpc = python("Who", 100, 1);
    assertEquals(20, grpc.path("OK").asInt(), grpc.toString());
    assertEquals(80, grpc.path("RESOURCE_EXHAUSTED").asInt(), grpc.toString());
    assertEquals(20, grpcOne.calls() + grpcTwo.calls());

    List<JsonNode> lines = AccessLogLines.awaitExactly(logFile, true, 200);
    // The rejected h2 streams: 429 with RL; the rejected gRPC calls: HTTP 200, grpc-status 8, RL.
    assertEquals(80, count(lines, l -> svc(l, "pool") && flag(l, "RL") && status(l) == 429));
    assertEquals(
        80,
        count(
            lines, l -> svc(l, "grpc") && flag(l, "RL") && status(l) == 200 && grpcStatus(l) == 8));
    assertEquals(40, count(lines, l -> !flag(l, "RL")), lines.toString());
    String metrics = metrics();
    assertTrue(metrics.contains(counter("nodemesh_http_rate_limited_total", "pool", 80)), metrics);
    assertTrue(metrics.contains(counter("nodemesh_http_rate_limited_total", "grpc", 80)), metrics);
  }

  @Test
  void circuitBreakerOverflowIs503OnH2AndUnavailableToGrpcWithFlagUO() throws Exception {
    String breaker = "circuitBreaker: {maxRequests: 2}\n";
    start(breaker, breaker);
    // Five streams at once on one h2c connection to /slow (held 2 s): two admitted, three refused.
    assertEquals(new Classes(2, 0, 3), h2load("/slow/x", 5, 5));

    // Five concurrent calls to Slow (each held 2 s by the server) on one gRPC channel.
    JsonNode grpc = python("Slow", 5, 5);
    assertEquals(2, grpc.path("OK").asInt(), grpc.toString());
    assertEquals(3, grpc.path("UNAVAILABLE").asInt(), grpc.toString());

    List<JsonNode> lines = AccessLogLines.awaitExactly(logFile, true, 10);
    assertEquals(3, count(lines, l -> svc(l, "pool") && flag(l, "UO") && status(l) == 503));
    assertEquals(
        3,
        count(
            lines,
            l -> svc(l, "grpc") && flag(l, "UO") && status(l) == 200 && grpcStatus(l) == 14));
    String metrics = metrics();
    assertTrue(
        metrics.contains(counter("nodemesh_http_circuit_breaker_overflows_total", "pool", 3)),
        metrics);
    assertTrue(
        metrics.contains(counter("nodemesh_http_circuit_breaker_overflows_total", "grpc", 3)),
        metrics);
    // Closed again: sequential streams and calls all pass.
    assertEquals(new Classes(4, 0, 0), h2load("/plain/x", 4, 1));
    assertEquals(4, python("Who", 4, 1).path("OK").asInt());
  }

  @Test
  void retriesRecoverEndpointsFailingHalfTheTimeOverH2AndGrpc() throws Exception {
    String policy =
        "loadBalancer: {algorithm: ROUND_ROBIN}\nretry: {backoff: {base: 1ms, max: 5ms}}\n";
    // A gRPC call is a POST: retried only when the policy says the Service's calls may be.
    start(
        policy,
        "loadBalancer: {algorithm: ROUND_ROBIN}\n"
            + "retry: {backoff: {base: 1ms, max: 5ms}, retryNonIdempotent: true}\n");
    two.failing(true);
    int n = 40;
    assertEquals(new Classes(n, 0, 0), h2load("/retry/x", n, 1));
    assertEquals(n, one.requests());
    assertTrue(two.requests() > 0);

    // Both gRPC servers fail every other Flaky call with UNAVAILABLE: half the tries fail, the
    // route retries UNAVAILABLE (503) and every call succeeds.
    JsonNode grpc = python("Flaky", n, 1);
    assertEquals(n, grpc.path("OK").asInt(), grpc.toString());
    int served = grpcOne.calls() + grpcTwo.calls();
    // Each call takes at most 3 tries (2 retries); at least one of them fails.
    assertTrue(served > n && served <= 3 * n, "server calls " + served);
    String metrics = metrics();
    assertTrue(
        metrics.contains(counter("nodemesh_http_retries_total", "grpc", served - n)), metrics);
  }

  @Test
  void roundRobinSplitsH2StreamsAndGrpcCallsEvenly() throws Exception {
    String rr = "loadBalancer: {algorithm: ROUND_ROBIN}\n";
    start(rr, rr);
    assertEquals(new Classes(100, 0, 0), h2load("/plain/x", 100, 1));
    assertEquals(50, one.requests());
    assertEquals(50, two.requests());
    JsonNode grpc = python("Who", 100, 1);
    assertEquals(50, grpc.path("who:pool-1").asInt(), grpc.toString());
    assertEquals(50, grpc.path("who:pool-2").asInt(), grpc.toString());
  }

  // ---- clients and checks ----

  /** Responses by class (h2load counts 2xx, 4xx and 5xx, not single codes). */
  record Classes(long ok, long client, long server) {}

  /**
   * {@code n} requests to {@code path} from h2load (nghttp2) over one h2c connection (prior
   * knowledge), at most {@code streams} at once. Not curl: curl 7.88 fails every request after the
   * first on a reused prior-knowledge connection (curl/curl#10634, fixed in 8.0).
   */
  private Classes h2load(String path, int n, int streams) throws IOException {
    String out =
        node.podExec(
            "client",
            "h2load",
            "-n",
            Integer.toString(n),
            "-c",
            "1",
            "-m",
            Integer.toString(streams),
            "http://" + VIP + path);
    assertTrue(out.contains("Application protocol: h2c"), out);
    java.util.regex.Matcher m =
        java.util.regex.Pattern.compile(
                "status codes: (\\d+) 2xx, (\\d+) 3xx, (\\d+) 4xx, (\\d+) 5xx")
            .matcher(out);
    assertTrue(m.find(), out);
    assertEquals("0", m.group(2), out);
    return new Classes(
        Long.parseLong(m.group(1)), Long.parseLong(m.group(3)), Long.parseLong(m.group(4)));
  }

  /**
   * {@code calls} unary calls to test.Echo/{@code method} from python3-grpcio, {@code concurrency}
   * in flight at once; returns the counts of status names, and of "who:POD" for OK answers.
   */
  private JsonNode python(String method, int calls, int concurrency) throws Exception {
    Path file = tmp.resolve("client.py");
    Files.writeString(
        file, CLIENT.formatted(GRPC_VIP, method, calls, concurrency), StandardCharsets.UTF_8);
    // /usr/bin/python3: the Debian interpreter that python3-grpcio is installed for.
    String out =
        node.podExec(
            "client",
            "env",
            "-u",
            "http_proxy",
            "-u",
            "https_proxy",
            "/usr/bin/python3",
            file.toString());
    return JSON.readTree(out.lines().reduce((a, b) -> b).orElseThrow());
  }

  static final String CLIENT =
      """
      import collections, json, grpc
      ch = grpc.insecure_channel("%s:9090", options=[("grpc.enable_http_proxy", 0)])
      call = ch.unary_unary("/test.Echo/%s")
      calls, concurrency = %d, %d
      c = collections.Counter()
      done = 0
      while done < calls:
          batch = [call.future(b"x", timeout=20) for _ in range(min(concurrency, calls - done))]
          for f in batch:
              try:
                  c["who:" + f.result().decode()] += 1
                  c["OK"] += 1
              except grpc.RpcError as e:
                  c[e.code().name] += 1
          done += len(batch)
      print(json.dumps(c))
      """;

  private static long count(List<JsonNode> lines, Predicate<JsonNode> p) {
    return lines.stream().filter(p).count();
  }

  private static boolean svc(JsonNode l, String service) {
    return l.path("destination_service").asText().equals(service + ".default");
  }

  private static boolean flag(JsonNode l, String flag) {
    return List.of(l.path("response_flags").asText().split(",")).contains(flag);
  }

  private static int status(JsonNode l) {
    return l.path("http_status").asInt();
  }

  private static int grpcStatus(JsonNode l) {
    return l.path("grpc_status").asInt(-1);
  }

  private static String counter(String name, String service, int value) {
    return name
        + "{destination_service=\""
        + service
        + ".default\",node=\"test-node\"} "
        + value
        + ".0";
  }

  private String metrics() {
    return node.proxy().dataPlane().metrics().scrape();
  }

  private static String policy(String service, String spec) {
    return """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: %s, namespace: default}
        spec:
          targetRef: {kind: Service, name: %s}
        """
            .formatted(service, service)
        + spec.indent(2);
  }

  private static String pod(String name, int host, String app) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          uid: uid-%s
          labels: {app: %s}
        spec:
          nodeName: test-node
          containers:
            - name: app
              ports: [{name: http, containerPort: 8080}, {name: grpc, containerPort: 9090}]
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, TestNode.SUBNET + host);
  }

  static final String SERVICES =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: pool, namespace: default}
      spec:
        clusterIP: %s
        selector: {app: pool}
        ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
      ---
      apiVersion: v1
      kind: Service
      metadata: {name: grpc, namespace: default}
      spec:
        clusterIP: %s
        selector: {app: pool}
        ports: [{name: grpc, port: 9090, targetPort: grpc, appProtocol: grpc}]
      """
          .formatted(VIP, GRPC_VIP);

  /** HTTPRoutes (gRPC is HTTP/2 too): retry 503, which a trailers-only UNAVAILABLE counts as. */
  static final String ROUTES =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: pool, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: pool, port: 80}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /retry}}]
            backendRefs: [{name: pool, port: 80}]
            retry: {codes: [503], attempts: 2}
          - backendRefs: [{name: pool, port: 80}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: grpc, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: grpc, port: 9090}]
        rules:
          - matches: [{path: {type: Exact, value: /test.Echo/Flaky}}]
            backendRefs: [{name: grpc, port: 9090}]
            retry: {codes: [503], attempts: 2}
          - backendRefs: [{name: grpc, port: 9090}]
      """;
}
