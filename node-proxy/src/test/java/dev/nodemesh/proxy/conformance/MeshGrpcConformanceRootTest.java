package dev.nodemesh.proxy.conformance;

import static dev.nodemesh.proxy.conformance.ConformanceMesh.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Gateway API conformance tests of the MESH-GRPC profile ({@code
 * conformance/tests/mesh/grpcroute-*.go}), one test per conformance test, on the same mesh as
 * {@link MeshHttpConformanceRootTest} with grpc-java servers on port 7070 of both echo pods. The
 * client is python3-grpcio (a non-Java gRPC implementation) in the {@code client} pod, calling
 * Service {@code echo}'s cluster IP on 7070; the server's {@code Headers} method answers the
 * request headers it received, which is how the suite's echo server shows them.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class MeshGrpcConformanceRootTest {
  private static final String NS = ConformanceMesh.NS;

  /** Also handed to the static set-up, which builds one mesh per mode. */
  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static ConformanceMesh mesh;

  /** One mesh per interception mode, shared by that mode's tests. */
  @BeforeParameterizedClassInvocation
  static void start(Interception mode) throws Exception {
    mesh = ConformanceMesh.start(tmp.resolve(mode.name()), mode, "Headers");
  }

  @AfterParameterizedClassInvocation
  static void stop() throws Exception {
    if (mesh != null) {
      mesh.close();
      mesh = null;
    }
  }

  @AfterEach
  void removeRoutes() throws Exception {
    mesh.apply("");
  }

  private static String grpcRoute(String name, String rules) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GRPCRoute
        metadata:
          name: %s
          namespace: %s
        spec:
          parentRefs:
            - {group: "", kind: Service, name: echo, port: 7070}
          rules:
        %s
        """
        .formatted(name, NS, rules.stripTrailing().indent(4).stripTrailing());
  }

  /**
   * {@code n} unary calls of test.Echo/Headers with {@code metadata}, from the client pod to
   * echo:7070; each answer's lines (pod= and h:name=value), or "error CODE".
   */
  private List<String> calls(int n, Map<String, String> metadata) throws Exception {
    StringBuilder md = new StringBuilder("(");
    metadata.forEach(
        (k, v) -> md.append("(\"").append(k).append("\", \"").append(v).append("\"),"));
    md.append(")");
    String script =
        """
        import grpc, json
        ch = grpc.insecure_channel("%s:7070", options=[("grpc.enable_http_proxy", 0)])
        call = ch.unary_unary("/test.Echo/Headers")
        out = []
        for _ in range(%d):
            try:
                out.append(call(b"x", metadata=%s, timeout=10).decode())
            except grpc.RpcError as e:
                out.append("error " + e.code().name)
        print(json.dumps(out))
        """
            .formatted(ConformanceMesh.VIPS.get("echo"), n, md);
    Path file = tmp.resolve("client.py");
    Files.writeString(file, script, StandardCharsets.UTF_8);
    String json =
        mesh.cluster()
            .node1
            .podExec(
                "client",
                "env",
                "-u",
                "http_proxy",
                "-u",
                "https_proxy",
                "/usr/bin/python3",
                file.toString());
    return new com.fasterxml.jackson.databind.ObjectMapper()
        .readValue(
            json.strip().lines().reduce((a, b) -> b).orElse("[]"),
            new com.fasterxml.jackson.core.type.TypeReference<List<String>>() {});
  }

  /** pod and headers of one answer: "pod" → name, "h:<name>" → value. */
  private static Map<String, String> fields(String answer) {
    Map<String, String> out = new TreeMap<>();
    for (String l : answer.split("\n")) {
      if (l.startsWith("pod=")) {
        out.put("pod", l.substring(4));
      } else if (l.startsWith("h:") && l.contains("=")) {
        out.put(l.substring(0, l.indexOf('=')), l.substring(l.indexOf('=') + 1));
      }
    }
    return out;
  }

  @Test
  @DisplayName("MeshGRPCRouteRequestHeaderModifier")
  void meshGrpcRouteRequestHeaderModifier() throws Exception {
    mesh.apply(
        grpcRoute(
            "grpc-request-header-modifier",
            """
            - matches: [{headers: [{name: x-test-case, value: set}]}]
              filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x-header-set, value: set-overwrites-values}]}}]
              backendRefs: [{name: echo-v1, port: 7070}]
            - matches: [{headers: [{name: x-test-case, value: add}]}]
              filters: [{type: RequestHeaderModifier, requestHeaderModifier: {add: [{name: x-header-add, value: add-appends-values}]}}]
              backendRefs: [{name: echo-v1, port: 7070}]
            - matches: [{headers: [{name: x-test-case, value: remove}]}]
              filters: [{type: RequestHeaderModifier, requestHeaderModifier: {remove: [x-header-remove]}}]
              backendRefs: [{name: echo-v1, port: 7070}]
            - matches: [{headers: [{name: x-test-case, value: multi}]}]
              filters:
                - type: RequestHeaderModifier
                  requestHeaderModifier:
                    set: [{name: x-header-set-1, value: header-set-1}, {name: x-header-set-2, value: header-set-2}]
                    add: [{name: x-header-add-1, value: header-add-1}, {name: x-header-add-2, value: header-add-2}]
                    remove: [x-header-remove-1, x-header-remove-2]
              backendRefs: [{name: echo-v2, port: 7070}]
            """));
    record Case(
        String testCase,
        Map<String, String> sent,
        String pod,
        Map<String, String> want,
        List<String> gone) {}
    List<Case> cases =
        List.of(
            new Case(
                "set",
                Map.of(
                    "some-other-header", "this-header-should-be-set",
                    "x-header-set", "this-value-should-be-overwritten"),
                "echo-v1",
                Map.of(
                    "some-other-header", "this-header-should-be-set",
                    "x-header-set", "set-overwrites-values"),
                List.of()),
            new Case(
                "add",
                Map.of("x-header-add", "this-value-should-be-appended"),
                "echo-v1",
                Map.of("x-header-add", "this-value-should-be-appended,add-appends-values"),
                List.of()),
            new Case(
                "remove",
                Map.of("x-header-remove", "this-should-be-removed"),
                "echo-v1",
                Map.of(),
                List.of("x-header-remove")),
            new Case(
                "multi",
                Map.of(
                    "x-header-set-2", "set-header-2",
                    "x-header-add-2", "add-header-2",
                    "x-header-remove-2", "should-be-removed-2"),
                "echo-v2",
                Map.of(
                    "x-header-set-1", "header-set-1",
                    "x-header-set-2", "header-set-2",
                    "x-header-add-1", "header-add-1",
                    "x-header-add-2", "add-header-2,header-add-2"),
                List.of("x-header-remove-1", "x-header-remove-2")));
    for (Case c : cases) {
      Map<String, String> sent = new LinkedHashMap<>();
      sent.put("x-test-case", c.testCase());
      sent.putAll(c.sent());
      eventually(
          () -> {
            String answer = calls(1, sent).get(0);
            Map<String, String> f = fields(answer);
            assertEquals(c.pod(), f.get("pod"), c.testCase() + ": " + answer);
            assertEquals(c.testCase(), f.get("h:x-test-case"), answer);
            c.want().forEach((k, v) -> assertEquals(v, f.get("h:" + k), k + ": " + answer));
            for (String g : c.gone()) {
              assertFalse(f.containsKey("h:" + g), g + ": " + answer);
            }
          });
    }
  }

  @Test
  @DisplayName("MeshGRPCRouteWeight")
  void meshGrpcRouteWeight() throws Exception {
    mesh.apply(
        grpcRoute(
            "mesh-grpc-weighted-backends",
            """
            - backendRefs:
                - {name: echo-v1, port: 7070, weight: 70}
                - {name: echo-v2, port: 7070, weight: 30}
                - {name: echo-v3, port: 7070, weight: 0}
            """));
    eventually(() -> assertTrue(calls(1, Map.of()).get(0).startsWith("pod=echo-v")));
    // As the HTTP weight test: 500 calls, each share within 5 points, up to 10 tries.
    AssertionError last = null;
    for (int attempt = 0; attempt < 10; attempt++) {
      Map<String, Integer> served = new TreeMap<>();
      for (String a : calls(500, Map.of())) {
        served.merge(fields(a).getOrDefault("pod", a), 1, Integer::sum);
      }
      try {
        assertEquals(List.of("echo-v1", "echo-v2"), List.copyOf(served.keySet()), "" + served);
        assertTrue(Math.abs(served.get("echo-v1") / 500.0 - 0.7) <= 0.05, "" + served);
        assertTrue(Math.abs(served.get("echo-v2") / 500.0 - 0.3) <= 0.05, "" + served);
        return;
      } catch (AssertionError e) {
        last = e;
      }
    }
    throw last;
  }
}
