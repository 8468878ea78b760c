package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.testing.AccessLogLines;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * L7 authorization and request mirroring end to end with curl: a policy with L7 rules on web-1
 * makes the proxy take the L7 path for Service api although no route is attached to it, checks each
 * request (403, flag DENY, the policy in the access log), and refuses a connection that is not HTTP
 * (fail closed); a RequestMirror on Service web sends a copy to shadow-1 with a {@code -shadow}
 * Host and never changes the client's answer, even when the mirror is down.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class L7PolicyRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  static final String WEB = "10.97.0.40";
  static final String API = "10.97.0.42";

  @TempDir Path tmp;
  private TestNode node;
  private Path logFile;
  private HttpTestServer web;
  private HttpTestServer shadow;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp.resolve("node"));
    node.addPod("client", 10);
    node.addPod("web-1", 11);
    node.addPod("shadow-1", 12);
    web = node.serveHttp("web-1", 8080);
    node.serve("web-1", 9000, TestServer.Mode.NAME);
    shadow = node.serveHttp("shadow-1", 8080);
    node.writeConfig(
        "pods.yaml",
        Mesh.httpPod("client", 10, "client")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpPod("shadow-1", 12, "shadow"));
    node.writeConfig(
        "services.yaml",
        service("web", WEB, "web")
            + service("api", API, "web")
            + service("shadow", "10.97.0.41", "shadow"));
    node.writeConfig("policy.yaml", POLICY);
    node.writeConfig("routes.yaml", ROUTE);
    logFile = tmp.resolve("access.log");
    modes = mode.setUp();
    node.startProxy(
        TransportKind.EPOLL, modes.nextNode(), AccessLogSettings.parse(logFile.toString(), 1.0));
    for (String p : List.of("client", "web-1", "shadow-1")) {
      node.enrol(p);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  @Test
  void l7RulesAreCheckedPerRequestWithoutARouteAndNonHttpIsRefused() throws Exception {
    assertEquals("200", code("http://" + API + "/public/a"));
    assertEquals("403", code("-X", "POST", "http://" + API + "/public/a"));
    assertEquals("403", code("http://" + API + "/private"));
    assertEquals("200", code("-H", "x-role: admin", "http://" + API + "/private"));
    // The DENY policy wins over the admin header.
    assertEquals("403", code("-H", "x-role: admin", "http://" + API + "/admin/users"));
    String body = curl("-s", "http://" + API + "/public/b");
    assertTrue(body.contains("pod=web-1") && body.contains("h:x-request-id="), body);

    // Port 9000 is not HTTP: after the sniff timeout the connection would be L4, where the L7
    // rules cannot be proved, so it is refused instead of greeting.
    // A pod process, not a socket of this JVM: in eBPF mode only the cgroup's processes are caught.
    String read =
        node.podExec(
            "client",
            "/usr/bin/python3",
            "-c",
            "import socket\n"
                + "try:\n"
                + "  s = socket.create_connection(('"
                + API
                + "', 9000), timeout=10)\n"
                + "  print('read', repr(s.recv(256)))\n"
                + "except OSError as e:\n"
                + "  print('error', e)\n");
    assertTrue(
        read.startsWith("read b''") || read.startsWith("error"),
        "no greeting must come through: " + read);

    List<JsonNode> lines = AccessLogLines.awaitAtLeast(logFile, 6);
    JsonNode denied =
        lines.stream()
            .filter(l -> "/admin/users".equals(l.path("http_path").asText()))
            .findFirst()
            .orElseThrow();
    assertEquals(403, denied.path("http_status").asInt(), denied.toString());
    assertEquals("DENY", denied.path("response_flags").asText(), denied.toString());
    assertEquals("deny", denied.path("authz_decision").asText(), denied.toString());
    assertEquals("default/deny-admin", denied.path("authz_policy").asText(), denied.toString());
    JsonNode allowed =
        lines.stream()
            .filter(l -> "/public/b".equals(l.path("http_path").asText()))
            .findFirst()
            .orElseThrow();
    assertEquals("default/web-l7", allowed.path("authz_policy").asText(), allowed.toString());
    // Two by the DENY policy: /admin/users, and the non-HTTP connection (at L4 the DENY rule's path
    // condition cannot be ruled out, so it counts as matching); two requests matched no ALLOW rule.
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains(
            "nodemesh_policy_denials_total{destination_namespace=\"default\","
                + "destination_workload=\"web-1\",node=\"test-node\",reason=\"denied_by_policy\","
                + "reporter=\"source\",source_principal=\"spiffe://cluster.local/ns/default/sa/default\"}"
                + " 2.0"),
        metrics);
    assertTrue(
        metrics.contains(
            "reason=\"no_allow_match\",reporter=\"source\","
                + "source_principal=\"spiffe://cluster.local/ns/default/sa/default\"} 2.0"),
        metrics);
  }

  @Test
  void mirrorGetsACopyWithAShadowHostAndNeverChangesTheAnswer() throws Exception {
    int before = web.requests();
    String out =
        curl("-s", "-H", "Host: web", "-H", "x-role: admin", "http://" + WEB + "/mirror/a");
    assertTrue(out.contains("pod=web-1"), out);
    assertEquals(before + 1, web.requests());
    long deadline = System.nanoTime() + 20_000_000_000L;
    while (shadow.requests() < 1 && System.nanoTime() < deadline) {
      Thread.sleep(20);
    }
    assertEquals(1, shadow.requests());
    assertEquals("web-shadow", shadow.hosts.peek());

    // A mirror that cannot be reached changes nothing for the client.
    for (int i = 0; i < 5; i++) {
      assertEquals("200", code("-H", "x-role: admin", "http://" + WEB + "/mirror-down/" + i));
    }
    assertEquals(1, shadow.requests());
  }

  private String code(String... args) throws IOException {
    List<String> a = new ArrayList<>(List.of("-s", "-o", "/dev/null", "-w", "%{http_code}"));
    a.addAll(List.of(args));
    return curl(a.toArray(String[]::new));
  }

  private String curl(String... args) throws IOException {
    return node.curl("client", args);
  }

  /** HTTP on 80, a plain TCP port (9000) and an HTTP port with nothing listening (81). */
  private static String service(String name, String vip, String app) {
    return Mesh.httpService(
        name,
        vip,
        app,
        "{name: tcp, port: 9000, targetPort: 9000}",
        "{name: down, port: 81, targetPort: 8081, appProtocol: http}");
  }

  static final String POLICY =
      """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: web-l7, namespace: default}
      spec:
        selector: {matchLabels: {app: web}}
        action: ALLOW
        rules:
          - to: [{methods: [GET], paths: ["/public/*"]}]
          - to: [{headers: {x-role: admin}}]
      ---
      """
          + Mesh.DENY_ADMIN_TO_WEB;

  static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: web, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: web, port: 80}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /mirror}}]
            filters:
              - type: RequestMirror
                requestMirror: {backendRef: {name: shadow, port: 80}}
            backendRefs: [{name: web, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /mirror-down}}]
            filters:
              - type: RequestMirror
                requestMirror: {backendRef: {name: shadow, port: 81}}
            backendRefs: [{name: web, port: 80}]
      """;
}
