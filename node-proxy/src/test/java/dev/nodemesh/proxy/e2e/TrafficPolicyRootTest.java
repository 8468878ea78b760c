package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * TrafficPolicy end to end: curl in a client pod, through the node proxy's L7 path, to the Service
 * "pool" with two real HTTP servers (pool-1, pool-2). Counts, never durations, are asserted.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TrafficPolicyRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String VIP = Mesh.POOL_VIP;

  @TempDir Path tmp;
  private TestNode node;
  private HttpTestServer one;
  private HttpTestServer two;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("pool-1", 11);
    node.addPod("pool-2", 12);
    one = node.serveHttp("pool-1", 8080);
    two = node.serveHttp("pool-2", 8080);
    node.writeConfig(
        "pods.yaml",
        Mesh.httpPod("client", 10, "client")
            + Mesh.httpPod("pool-1", 11, "pool")
            + Mesh.httpPod("pool-2", 12, "pool"));
    node.writeConfig("services.yaml", Mesh.POOL_SERVICE);
    node.writeConfig("routes.yaml", Mesh.POOL_ROUTE);
  }

  private void start(String policySpec) throws Exception {
    node.writeConfig(
        "policy.yaml",
        """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: TrafficPolicy
        metadata: {name: pool, namespace: default}
        spec:
          targetRef: {kind: Service, name: pool}
        """
            + policySpec.indent(2));
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    for (String p : List.of("client", "pool-1", "pool-2")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      node.close();
    } finally {
      if (modes != null) {
        modes.close();
      }
    }
  }

  @Test
  void anEndpointFailingInARowIsEjectedAndReturnsAfterTheEjectionTime() throws Exception {
    start(
        """
        loadBalancer: {algorithm: ROUND_ROBIN}
        outlierDetection: {consecutive5xx: 3, baseEjectionTime: 1s, maxEjectionPercent: 50}
        """);
    two.failing(true);
    List<String> codes = codes("http://" + VIP + "/plain/[1-20]");
    // Round robin: pool-2 gets requests 2, 4 and 6, fails them, and is ejected after the third.
    assertEquals(3, codes.stream().filter("503"::equals).count(), codes.toString());
    assertEquals(17, codes.stream().filter("200"::equals).count(), codes.toString());
    assertEquals(3, two.requests());
    assertTrue(
        metrics()
            .contains(
                "nodemesh_http_outlier_ejections_total{destination_service=\"pool.default\",node=\"test-node\"} 1.0"),
        metrics());
    two.failing(false);
    // Back after baseEjectionTime: keep asking (bounded) until pool-2 serves again.
    for (int i = 0; i < 200 && two.requests() == 3; i++) {
      curl("-s", "-o", "/dev/null", "http://" + VIP + "/plain/again");
      Thread.sleep(50);
    }
    assertTrue(two.requests() > 3, "the ejected endpoint never returned");
  }

  @Test
  void circuitBreakerRefusesConcurrentRequestsOverTheLimitThenRecovers() throws Exception {
    start("circuitBreaker: {maxRequests: 2}\n");
    // Five at once to /slow (each held 2 s by the server): two admitted, three refused at once.
    List<String> codes =
        codes(
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            "5",
            "http://" + VIP + "/slow/[1-5]");
    assertEquals(2, codes.stream().filter("200"::equals).count(), codes.toString());
    assertEquals(3, codes.stream().filter("503"::equals).count(), codes.toString());
    assertTrue(
        metrics()
            .contains(
                "nodemesh_http_circuit_breaker_overflows_total{destination_service=\"pool.default\",node=\"test-node\"} 3.0"),
        metrics());
    // Closed again: sequential requests all pass.
    List<String> after = codes("http://" + VIP + "/plain/[1-6]");
    assertEquals(List.of("200", "200", "200", "200", "200", "200"), after);
  }

  @Test
  void rateLimitAdmitsExactlyTheBucketAndAnswers429WithRetryAfter() throws Exception {
    start("rateLimit: {maxTokens: 20, tokensPerFill: 1, fillInterval: 1h}\n");
    List<String> codes = codes("http://" + VIP + "/plain/[1-100]");
    long ok = codes.stream().filter("200"::equals).count();
    assertEquals(20, ok, codes.toString()); // the bucket size, exactly (within 5 % asked)
    assertEquals(80, codes.stream().filter("429"::equals).count(), codes.toString());
    String head = curl("-s", "-i", "http://" + VIP + "/plain/x");
    assertTrue(head.startsWith("HTTP/1.1 429"), head);
    assertTrue(
        head.toLowerCase(java.util.Locale.ROOT).matches("(?s).*retry-after: [0-9]+\r\n.*"), head);
    assertTrue(
        metrics()
            .contains(
                "nodemesh_http_rate_limited_total{destination_service=\"pool.default\",node=\"test-node\"} 81.0"),
        metrics());
  }

  @Test
  void aSpentRetryBudgetStopsTheRetryStorm() throws Exception {
    start("retry: {budgetPercent: 0, minRetryConcurrency: 0}\n");
    one.failing(true);
    two.failing(true);
    int n = 30;
    List<String> codes = codes("http://" + VIP + "/retry/[1-" + n + "]");
    assertEquals(n, codes.stream().filter("503"::equals).count(), codes.toString());
    // The route asks for 2 retries per request; the budget allows none: one try each.
    assertEquals(n, one.requests() + two.requests());
    assertTrue(
        metrics()
            .contains(
                "nodemesh_http_retry_budget_exhausted_total{destination_service=\"pool.default\",node=\"test-node\"} 30.0"),
        metrics());
  }

  @Test
  void retriesWithinTheBudgetRecoverAFailingEndpointOnTheOtherOne() throws Exception {
    start("loadBalancer: {algorithm: ROUND_ROBIN}\nretry: {backoff: {base: 1ms, max: 5ms}}\n");
    two.failing(true);
    int n = 40;
    List<String> codes = codes("http://" + VIP + "/retry/[1-" + n + "]");
    // Every request that went to pool-2 was retried on pool-1 (a retry avoids the failed endpoint).
    assertEquals(n, codes.stream().filter("200"::equals).count(), codes.toString());
    assertEquals(n, one.requests());
    assertTrue(two.requests() > 0);
  }

  private List<String> codes(String... urlArgs) throws IOException {
    String[] args = new String[urlArgs.length + 4];
    args[0] = "-s";
    args[1] = "-o";
    args[2] = "/dev/null";
    args[3] = "-w";
    String[] full = new String[args.length + 1];
    System.arraycopy(args, 0, full, 0, 4);
    full[4] = "%{http_code}\\n";
    System.arraycopy(urlArgs, 0, full, 5, urlArgs.length);
    return curl(full).lines().toList();
  }

  private String metrics() {
    return node.proxy().dataPlane().metrics().scrape();
  }

  private String curl(String... args) throws IOException {
    return node.curl("client", args);
  }
}
