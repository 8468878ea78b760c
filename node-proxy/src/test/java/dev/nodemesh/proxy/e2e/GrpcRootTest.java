package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.testing.AccessLogLines;
import dev.nodemesh.proxy.testing.GrpcTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
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
 * gRPC end to end with a non-Java client: python3-grpcio (C core, generic unary calls with raw
 * bytes, so no generated stubs) inside the client pod calls a grpc-java server through the node
 * proxy, over h2c, on a Service whose GRPCRoute splits by weight, matches a header and injects a
 * fault. Statistical checks use counts with fixed tolerances, never time.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class GrpcRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String VIP = "10.97.0.30";
  static final int N = 2000;

  @TempDir Path tmp;
  private TestNode node;
  private Path logFile;
  private GrpcTestServer v1;
  private GrpcTestServer v2;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addPod("client", 10);
    node.addPod("grpc-v1-1", 11);
    node.addPod("grpc-v2-1", 12);
    v1 = node.serveGrpc("grpc-v1-1", 9090, "Who", "Faulty", "Delayed");
    v2 = node.serveGrpc("grpc-v2-1", 9090, "Who", "Faulty", "Delayed");
    node.writeConfig(
        "pods.yaml",
        pod("client", 10, "none") + pod("grpc-v1-1", 11, "v1") + pod("grpc-v2-1", 12, "v2"));
    node.writeConfig(
        "services.yaml",
        service("grpc", VIP, "app: grpc")
            + service("grpc-v1", "10.97.0.31", "version: v1")
            + service("grpc-v2", "10.97.0.32", "version: v2"));
    node.writeConfig("routes.yaml", ROUTE);
    logFile = tmp.resolve("access.log");
    modes = mode.setUp();
    node.startProxy(
        TransportKind.EPOLL, modes.nextNode(), AccessLogSettings.parse(logFile.toString(), 1.0));
    for (String p : List.of("client", "grpc-v1-1", "grpc-v2-1")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void pythonClientThroughGrpcRouteSplitHeaderMatchAndFaultAbort() throws Exception {
    String out = python(CLIENT);
    JsonNode counts = new ObjectMapper().readTree(out.lines().reduce((a, b) -> b).orElseThrow());
    System.out.println("python grpc client counts: " + counts);

    // Weighted split 80/20 over N calls, within ±3 percentage points.
    int toV1 = counts.path("who:grpc-v1-1").asInt();
    int toV2 = counts.path("who:grpc-v2-1").asInt();
    assertEquals(N, toV1 + toV2, out);
    assertTrue(Math.abs(toV1 / (double) N - 0.8) <= 0.03, out);

    // The header match (same service, more header matches: higher precedence) sends all to v2.
    assertEquals(200, counts.path("canary:grpc-v2-1").asInt(), out);

    // Abort UNAVAILABLE for 20% ± 3% of N calls; the rest reach the server.
    int aborted = counts.path("faulty:UNAVAILABLE").asInt();
    int passed = counts.path("faulty:ok").asInt();
    assertEquals(N, aborted + passed, out);
    assertTrue(Math.abs(aborted / (double) N - 0.2) <= 0.03, out);

    // Every call that was not aborted reached a server; aborted ones never did.
    assertEquals(N + 200 + passed + 20, v1.calls() + v2.calls(), out);

    // grpc-status in metrics: the proxy counted exactly the aborts the client saw.
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertEquals(
        aborted,
        sum(metrics, "nodemesh_grpc_responses_total{", "grpc_status=\"UNAVAILABLE\""),
        metrics);
    assertTrue(
        sum(metrics, "nodemesh_grpc_responses_total{", "grpc_status=\"OK\"") >= N + 200 + passed,
        metrics);

    // And in the access log: the aborts carry FI and grpc_status 14; the delayed calls DI.
    int expected = N + 200 + N + 20;
    List<JsonNode> lines = AccessLogLines.awaitAtLeast(logFile, expected);
    long fi =
        lines.stream()
            .filter(l -> l.path("response_flags").asText().contains("FI"))
            .filter(
                l -> l.path("grpc_status").asInt() == 14 && l.path("http_status").asInt() == 200)
            .count();
    assertEquals(aborted, fi);
    long delayed =
        lines.stream()
            .filter(l -> l.path("http_path").asText().equals("/test.Echo/Delayed"))
            .filter(l -> l.path("response_flags").asText().contains("DI"))
            .filter(l -> l.path("grpc_status").asInt() == 0)
            .count();
    assertEquals(20, delayed);
  }

  private static double sum(String scrape, String prefix, String label) {
    double total = 0;
    for (String line : scrape.split("\n")) {
      if (line.startsWith(prefix) && line.contains(label)) {
        total += Double.parseDouble(line.substring(line.lastIndexOf(' ') + 1));
      }
    }
    return total;
  }

  private String python(String script) throws Exception {
    Path file = tmp.resolve("client.py");
    Files.writeString(file, script, StandardCharsets.UTF_8);
    // /usr/bin/python3: the Debian interpreter that python3-grpcio is installed for.
    return node.podExec(
        "client",
        "env",
        "-u",
        "http_proxy",
        "-u",
        "https_proxy",
        "/usr/bin/python3",
        file.toString());
  }

  static final String CLIENT =
      """
      import collections, json, grpc
      N = %d
      ch = grpc.insecure_channel("%s:9090", options=[("grpc.enable_http_proxy", 0)])
      who = ch.unary_unary("/test.Echo/Who")
      faulty = ch.unary_unary("/test.Echo/Faulty")
      delayed = ch.unary_unary("/test.Echo/Delayed")
      c = collections.Counter()
      for _ in range(N):
          c["who:" + who(b"x", timeout=10).decode()] += 1
      for _ in range(200):
          c["canary:" + who(b"x", metadata=(("x-canary", "yes"),), timeout=10).decode()] += 1
      for _ in range(N):
          try:
              faulty(b"x", timeout=10)
              c["faulty:ok"] += 1
          except grpc.RpcError as e:
              c["faulty:" + e.code().name] += 1
      for _ in range(20):
          delayed(b"x", timeout=10)
      print(json.dumps(c))
      """
          .formatted(N, VIP);

  private static String pod(String name, int host, String version) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          labels: {app: %s, version: %s}
        spec:
          nodeName: test-node
        status:
          podIP: %s
        ---
        """
        .formatted(
            name, name.equals("client") ? "client" : "grpc", version, TestNode.SUBNET + host);
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
            - name: grpc
              port: 9090
              targetPort: 9090
              appProtocol: grpc
        ---
        """
        .formatted(name, vip, selector);
  }

  static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata:
        name: echo
        namespace: default
      spec:
        parentRefs:
          - {group: "", kind: Service, name: grpc, port: 9090}
        rules:
          - matches:
              - method: {service: test.Echo, method: Faulty}
            filters:
              - type: ExtensionRef
                extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: unavailable}
            backendRefs:
              - {name: grpc-v1, port: 9090}
          - matches:
              - method: {service: test.Echo, method: Delayed}
            filters:
              - type: ExtensionRef
                extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: slow}
            backendRefs:
              - {name: grpc-v1, port: 9090}
          - matches:
              - method: {service: test.Echo}
                headers: [{name: x-canary, value: "yes"}]
            backendRefs:
              - {name: grpc-v2, port: 9090}
          - matches:
              - method: {service: test.Echo}
            backendRefs:
              - {name: grpc-v1, port: 9090, weight: 80}
              - {name: grpc-v2, port: 9090, weight: 20}
      ---
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: HTTPFault
      metadata:
        name: unavailable
        namespace: default
      spec:
        abort:
          grpcStatus: UNAVAILABLE
          percentage: 20
      ---
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: HTTPFault
      metadata:
        name: slow
        namespace: default
      spec:
        delay:
          fixedDelay: 5ms
          percentage: 100
      """;
}
