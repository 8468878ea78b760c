package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.H2TestServer;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The L7 path end to end: curl (HTTP/1.1 and h2c prior knowledge) and h2load inside a client pod,
 * through its captured connection to a Service VIP with an HTTPRoute, to HTTP servers in two
 * backend pods (web-v1-1 behind Service web-v1, web-v2-1 behind web-v2). Both interception modes:
 * the tools run as pod processes ({@link TestNode#podExec}) and byte-exact clients are sockets made
 * in the pod ({@link TestNode#podConnect}).
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class L7RootTest {
  static final String VIP = "10.97.0.20";
  static final String V1_VIP = "10.97.0.21";
  static final String V2_VIP = "10.97.0.22";

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;
  private HttpTestServer v1;
  private HttpTestServer v2;
  private H2TestServer grpcish;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("web-v1-1", 11);
    node.addPod("web-v2-1", 12);
    v1 = node.serveHttp("web-v1-1", 8080);
    v2 = node.serveHttp("web-v2-1", 8080);
    node.serve("web-v1-1", 9000, TestServer.Mode.NAME);
    grpcish = node.serveH2("web-v2-1", 9090);
    node.writeConfig(
        "pods.yaml",
        pod("client", 10, "client", "none")
            + pod("web-v1-1", 11, "web", "v1")
            + pod("web-v2-1", 12, "web", "v2"));
    node.writeConfig(
        "services.yaml",
        service("web", VIP, "app: web")
            + service("web-v1", V1_VIP, "version: v1")
            + service("web-v2", V2_VIP, "version: v2")
            + H2_SERVICE);
    node.writeConfig("routes.yaml", ROUTE);
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    for (String p : List.of("client", "web-v1-1", "web-v2-1")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void pathAndHeaderRoutingOverHttp1AndH2() throws IOException {
    String byPath = curl("-s", "http://" + VIP + "/v2/hello?x=1");
    assertTrue(byPath.contains("pod=web-v2-1"), byPath);
    assertTrue(byPath.contains("h:x-routed=v2"), byPath);
    assertTrue(byPath.contains("h:x-forwarded-for=" + node.ip("client")), byPath);
    assertTrue(byPath.contains("h:x-forwarded-proto=http"), byPath);
    assertTrue(byPath.matches("(?s).*h:traceparent=00-[0-9a-f]{32}-[0-9a-f]{16}-01\n.*"), byPath);
    assertTrue(byPath.matches("(?s).*h:x-request-id=[0-9a-f-]{36}\n.*"), byPath);

    String byHeader = curl("-s", "-H", "x-version: v2", "http://" + VIP + "/other");
    assertTrue(byHeader.contains("pod=web-v2-1"), byHeader);
    String byDefault = curl("-s", "http://" + VIP + "/other");
    assertTrue(byDefault.contains("pod=web-v1-1"), byDefault);

    String rewritten = curl("-s", "http://" + VIP + "/api/items?id=7");
    assertTrue(rewritten.contains("uri=/v1api/items?id=7"), rewritten);

    String h2 = curl("-s", "-i", "--http2-prior-knowledge", "http://" + VIP + "/v2/over-h2");
    assertTrue(h2.startsWith("HTTP/2 200"), h2);
    assertTrue(h2.contains("x-served-by-route: web"), h2);
    assertTrue(h2.contains("pod=web-v2-1"), h2);
    String h2Default = curl("-s", "--http2-prior-knowledge", "http://" + VIP + "/other");
    assertTrue(h2Default.contains("pod=web-v1-1"), h2Default);

    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains(
            "nodemesh_http_requests_total{destination_namespace=\"default\","
                + "destination_principal=\"unknown\","
                + "destination_service=\"web-v2.default\",destination_workload=\"web-v2-1\","
                + "node=\"test-node\",reporter=\"source\",response_code_class=\"2xx\","
                + "source_namespace=\"default\",source_principal=\"unknown\","
                + "source_workload=\"client\"} 3.0"),
        metrics);
    assertTrue(metrics.contains("nodemesh_http_request_duration_seconds_bucket{"), metrics);
  }

  /**
   * A backendRef to a Service in another namespace is refused (500 for the requests the rule picks
   * it for, the other backend keeps its share) until a ReferenceGrant in that namespace permits it;
   * the grant arrives by the config watcher's reload.
   */
  @Test
  void crossNamespaceBackendNeedsAReferenceGrant() throws Exception {
    node.addPod("far-1", 13);
    node.serveHttp("far-1", 8080);
    node.writeConfig(
        "far.yaml",
        pod("far-1", 13, "far", "v1").replace("namespace: default", "namespace: backend")
            + service("far", "10.97.0.24", "app: far")
                .replace("namespace: default", "namespace: backend")
            + """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: split-far, namespace: default}
            spec:
              parentRefs: [{group: "", kind: Service, name: web-v1, port: 80}]
              rules:
                - backendRefs:
                    - {name: far, namespace: backend, port: 80, weight: 50}
                    - {name: web-v1, port: 80, weight: 50}
            """);
    awaitDirectory();
    node.agent().addPod(node.podMessage("far-1").toBuilder().setNamespace("backend").build());

    Map<String, Integer> refused = codesAndPods(200);
    assertEquals(200, refused.getOrDefault("200 web-v1-1", 0) + refused.getOrDefault("500", 0));
    assertTrue(refused.getOrDefault("200 web-v1-1", 0) > 0, refused.toString());
    assertTrue(refused.getOrDefault("500", 0) > 0, refused.toString()); // far's half: refused

    node.writeConfig(
        "grant.yaml",
        """
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: ReferenceGrant
        metadata: {name: from-default, namespace: backend}
        spec:
          from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
          to: [{group: "", kind: Service, name: far}]
        """);
    awaitDirectory();
    Map<String, Integer> granted = codesAndPods(200);
    assertEquals(
        200, granted.getOrDefault("200 web-v1-1", 0) + granted.getOrDefault("200 far-1", 0));
    assertTrue(granted.getOrDefault("200 far-1", 0) > 0, granted.toString());
  }

  /** Waits until the proxy serves exactly what the config directory holds now. */
  private void awaitDirectory() throws Exception {
    dev.nodemesh.model.config.ConfigSnapshot want =
        dev.nodemesh.model.load.ConfigLoader.load(node.configDir());
    Await.waitFor(
        () -> node.proxy().dataPlane().snapshots().current().sameContent(want),
        () -> node.proxy().dataPlane().snapshots().current().describe());
  }

  /** n requests to web-v1's VIP on one connection: "code pod" (just "code" without a pod). */
  private Map<String, Integer> codesAndPods(int n) throws IOException {
    String out =
        curl(
            "-s",
            "--max-time",
            "30",
            "-w",
            "code=%{http_code}\n",
            "http://" + V1_VIP + "/far/[1-" + n + "]");
    Map<String, Integer> seen = new HashMap<>();
    String pod = "";
    for (String line : out.split("\n")) {
      if (line.startsWith("pod=")) {
        pod = " " + line.substring(4);
      } else if (line.contains("code=")) {
        seen.merge(line.substring(line.indexOf("code=") + 5) + pod, 1, Integer::sum);
        pod = "";
      }
    }
    return seen;
  }

  @Test
  void weightedSplitIsNinetyTenOverTenThousandRequests() throws IOException {
    int n = 10_000;
    // One curl, one keep-alive connection, n requests (URL globbing).
    String out = curl("-s", "--max-time", "50", "http://" + VIP + "/split/[1-" + n + "]");
    Map<String, Integer> served = new HashMap<>();
    for (String line : out.split("\n")) {
      if (line.startsWith("pod=")) {
        served.merge(line.substring(4), 1, Integer::sum);
      }
    }
    int total = served.values().stream().mapToInt(Integer::intValue).sum();
    assertEquals(n, total, served.toString());
    double v1Share = served.getOrDefault("web-v1-1", 0) / (double) n;
    assertTrue(Math.abs(v1Share - 0.9) <= 0.03, served.toString());
  }

  @Test
  void retriesRecoverFromAnEndpointThatFailsEveryOtherRequest() throws IOException {
    int n = 50;
    String out =
        curl(
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\n",
            "http://" + VIP + "/flaky/[1-" + n + "]");
    assertEquals(n, out.lines().filter("200"::equals).count(), out);
    // Every client request cost the server two: the 503 and the retry that succeeded.
    assertEquals(2 * n, v1.flakyRequests());
    // /flaky-direct is not under the PathPrefix /flaky (whole segments only): the default rule,
    // which has no retry, so the server's next 503 (its count is even again) reaches the client.
    String plain =
        curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "http://" + VIP + "/flaky-direct");
    assertEquals("503", plain);
  }

  @Test
  void requestTimeoutGives504() throws IOException {
    String out = curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "http://" + VIP + "/slow/x");
    assertEquals("504", out);
    // The connection and the proxy keep working after a timeout.
    String after = curl("-s", "http://" + VIP + "/other");
    assertTrue(after.contains("pod=web-v1-1"), after);
  }

  @Test
  void malformedAndOversizedRequestsAreRefusedAlone() throws IOException {
    String big = "x-big: " + "a".repeat(20_000);
    String tooLarge =
        curl("-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", big, "http://" + VIP + "/other");
    assertEquals("431", tooLarge);
    try (Conn ch = node.podConnect("client", VIP, 80)) {
      ch.write(
          ByteBuffer.wrap(
              "GET /x HTTP/1.1\r\nHost: web\r\nbad header line\r\n\r\n"
                  .getBytes(StandardCharsets.US_ASCII)));
      ByteBuffer buf = ByteBuffer.allocate(4096);
      StringBuilder sb = new StringBuilder();
      while (ch.read(buf) > 0) {
        buf.flip();
        sb.append(StandardCharsets.US_ASCII.decode(buf));
        buf.clear();
      }
      assertTrue(sb.toString().startsWith("HTTP/1.1 400"), sb.toString());
    }
    String fine = curl("-s", "http://" + VIP + "/other");
    assertTrue(fine.contains("pod=web-v1-1"), fine);
  }

  @Test
  void nonHttpPortStaysL4AndNoRouteGives404OnlyWhereRouted() throws IOException {
    // Port 9000 has no route: the TCP server's own greeting comes back through the L4 relay.
    try (Conn ch = node.podConnect("client", VIP, 9000)) {
      ByteBuffer buf = ByteBuffer.allocate(256);
      ch.read(buf);
      buf.flip();
      assertTrue(StandardCharsets.US_ASCII.decode(buf).toString().startsWith("web-v1-1 "));
    }
    // The v1 Service has no route attached: plain L4 to its endpoint, HTTP still works.
    String direct = curl("-s", "http://" + V1_VIP + "/anything");
    assertTrue(direct.contains("pod=web-v1-1"), direct);
    assertTrue(!direct.contains("h:x-request-id"), direct);
  }

  /**
   * 1,000 L7 connections opened and closed by the client: HTTP/1.1 half-closed after a request,
   * with {@code Connection: close}, closed before saying anything, closed mid keep-alive, and h2c
   * (h2load). None may stay in CLOSE-WAIT in the client's netns (where the in-pod listener and the
   * upstream sockets live), and the JVM's fd count (proxy and test servers) comes back within 64 of
   * where it started: the HTTP/1.1 upstream pool may keep more idle connections than after the
   * warm-up (at most 64 idle per endpoint and loop), the leak this guards against was one per
   * connection.
   */
  @Test
  void closedConnectionsLeaveNoCloseWaitAndNoFds() throws Exception {
    String warm = node.podExec("client", "h2load", "-n", "100", "-c", "50", "http://" + VIP + "/x");
    assertTrue(warm.contains("100 succeeded"), warm);
    long fdsBefore = openFds();
    byte[] keepAlive =
        "GET /other HTTP/1.1\r\nHost: web\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
    byte[] close =
        "GET /other HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n"
            .getBytes(StandardCharsets.US_ASCII);
    for (int i = 0; i < 750; i++) {
      try (Conn ch = node.podConnect("client", VIP, 80)) {
        switch (i % 3) {
          case 0 -> {
            ch.write(ByteBuffer.wrap(keepAlive));
            ch.shutdownOutput(); // the proxy answers, then closes its side
            assertTrue(readAll(ch).startsWith("HTTP/1.1 200"));
          }
          case 1 -> {
            ch.write(ByteBuffer.wrap(close));
            assertTrue(readAll(ch).startsWith("HTTP/1.1 200"));
          }
          default -> {
            if (i % 2 == 0) {
              ch.write(ByteBuffer.wrap(keepAlive));
              ByteBuffer buf = ByteBuffer.allocate(64);
              ch.read(buf); // part of the answer; the client closes with the rest unread
            }
          }
        }
      }
    }
    for (int run = 0; run < 5; run++) {
      String out =
          node.podExec("client", "h2load", "-n", "100", "-c", "50", "http://" + VIP + "/x");
      assertTrue(out.contains("100 succeeded"), out);
    }
    String closeWait = "";
    long fdsAfter = 0;
    for (int tries = 0; tries < 50; tries++) {
      closeWait = node.podExec("client", "ss", "-Htan", "state", "close-wait");
      fdsAfter = openFds();
      if (closeWait.isBlank() && fdsAfter <= fdsBefore + 64) {
        break;
      }
      Thread.sleep(100);
    }
    assertEquals("", closeWait.strip(), "sockets left in CLOSE-WAIT");
    assertTrue(fdsAfter <= fdsBefore + 64, "fds " + fdsBefore + " -> " + fdsAfter);
    String fine = curl("-s", "http://" + VIP + "/other");
    assertTrue(fine.contains("pod=web-v1-1"), fine);
  }

  private static long openFds() throws IOException {
    try (var s = java.nio.file.Files.list(Path.of("/proc/self/fd"))) {
      return s.count();
    }
  }

  private static String readAll(Conn ch) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(4096);
    StringBuilder sb = new StringBuilder();
    while (ch.read(buf) > 0) {
      buf.flip();
      sb.append(StandardCharsets.US_ASCII.decode(buf));
      buf.clear();
    }
    return sb.toString();
  }

  @Test
  void h2loadSmoke() throws IOException {
    String out =
        node.podExec(
            "client",
            "h2load",
            "-n",
            "2000",
            "-c",
            "4",
            "-m",
            "10",
            "-T",
            "30",
            "http://" + VIP + "/other");
    assertTrue(out.contains("2000 succeeded"), out);
    assertTrue(out.contains("status codes: 2000 2xx"), out);
  }

  @Test
  void http2UpstreamIsMultiplexedForHttp1AndH2Clients() throws IOException {
    String viaH1 = curl("-s", "http://" + VIP + "/h2/a");
    assertTrue(viaH1.contains("pod=web-v2-1\nproto=h2\nuri=/h2/a"), viaH1);
    String viaH2 = curl("-s", "--http2-prior-knowledge", "http://" + VIP + "/h2/b");
    assertTrue(viaH2.contains("proto=h2\nuri=/h2/b"), viaH2);
    String out =
        node.podExec(
            "client",
            "h2load",
            "-n",
            "1000",
            "-c",
            "4",
            "-m",
            "10",
            "-T",
            "30",
            "http://" + VIP + "/h2/c");
    assertTrue(out.contains("status codes: 1000 2xx"), out);
    assertEquals(1002, grpcish.streams());
    // One upstream connection per proxy event loop (the test proxy has 2), not one per request.
    assertTrue(grpcish.connections() <= 2, "connections: " + grpcish.connections());
  }

  private String curl(String... args) throws IOException {
    return node.curl("client", args);
  }

  private static String pod(String name, int host, String app, String version) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          uid: uid-%s
          labels:
            app: %s
            version: %s
        spec:
          nodeName: test-node
          containers:
            - name: app
              ports:
                - name: http
                  containerPort: 8080
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, version, TestNode.SUBNET + host);
  }

  private static String service(String name, String vip, String selector) {
    return """
        apiVersion: v1
        kind: Service
        metadata:
          name: %s
          namespace: default
        spec:
          clusterIP: %s
          selector:
            %s
          ports:
            - name: http
              port: 80
              targetPort: http
              appProtocol: http
            - name: tcp
              port: 9000
              targetPort: 9000
        ---
        """
        .formatted(name, vip, selector);
  }

  /** An h2c-only backend (appProtocol kubernetes.io/h2c) reached through web's /h2 rule. */
  static final String H2_SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: web-h2
        namespace: default
      spec:
        clusterIP: 10.97.0.23
        selector:
          version: v2
        ports:
          - name: h2c
            port: 90
            targetPort: 9090
            appProtocol: kubernetes.io/h2c
      """;

  static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata:
        name: web
        namespace: default
      spec:
        parentRefs:
          - group: ""
            kind: Service
            name: web
            port: 80
        rules:
          - matches:
              - path: {type: PathPrefix, value: /v2}
              - headers: [{name: x-version, value: v2}]
            filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: x-routed, value: v2}]
              - type: ResponseHeaderModifier
                responseHeaderModifier:
                  add: [{name: x-served-by-route, value: web}]
            backendRefs:
              - {name: web-v2, port: 80}
          - matches:
              - path: {type: PathPrefix, value: /h2}
            backendRefs:
              - {name: web-h2, port: 90}
          - matches:
              - path: {type: PathPrefix, value: /split}
            backendRefs:
              - {name: web-v1, port: 80, weight: 90}
              - {name: web-v2, port: 80, weight: 10}
          - matches:
              - path: {type: PathPrefix, value: /flaky}
            backendRefs:
              - {name: web-v1, port: 80}
            retry:
              codes: [503]
              attempts: 2
              backoff: 1ms
          - matches:
              - path: {type: PathPrefix, value: /slow}
            backendRefs:
              - {name: web-v1, port: 80}
            timeouts:
              request: 300ms
          - matches:
              - path: {type: PathPrefix, value: /api}
            filters:
              - type: URLRewrite
                urlRewrite:
                  path: {type: ReplacePrefixMatch, replacePrefixMatch: /v1api}
            backendRefs:
              - {name: web-v1, port: 80}
          - backendRefs:
              - {name: web-v1, port: 80}
      """;
}
