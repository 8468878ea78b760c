package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
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
 * L7 authorization for a caller on another node, in both interception modes: the destination's node
 * parses the HTTP inside the HBONE stream and checks each request with the caller's SPIFFE ID from
 * mTLS. Two ways in: through the Service VIP (the client's node takes the L7 path and sends
 * HTTP/1.1 inside the tunnel) and to the pod IP (the client's node relays bytes at L4, so only the
 * receiving node can see the request). Denied requests get 403 from node-2, allowed ones reach the
 * app, with the path normalised before the policy reads it.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class CrossNodeL7PolicyRootTest {
  private static final String VIP = "10.97.0.50";
  private static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client";

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private Interception.Setup modes;
  private HttpTestServer web;

  @BeforeEach
  void setUp() throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp);
    cluster.node1.addPod("client", 10);
    cluster.node1.addPod("other", 12);
    cluster.node2.addPod("web-1", 11);
    web = cluster.node2.serveHttp("web-1", 8080);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", cluster.node1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("other", cluster.node1.ip("other"), "other", "node-1", "other")
            + Mesh.pod("web-1", cluster.node2.ip("web-1"), "web", "node-2", "web"));
    cluster.writeConfig("services.yaml", Mesh.httpService("web", VIP, "web"));
  }

  private void start(String policy) throws Exception {
    cluster.writeConfig("policy.yaml", policy);
    cluster.startProxiesWithPolicy(modes);
    cluster.node1.enrol("client");
    cluster.node1.enrol("other");
    cluster.node2.enrol("web-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(cluster, modes);
  }

  @Test
  void allowGetOkForTheClientsPrincipalIsCheckedPerRequestOnTheReceivingNode() throws Exception {
    start(
        """
        apiVersion: security.nodemesh.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: get-ok, namespace: default}
        spec:
          selector: {matchLabels: {app: web}}
          action: ALLOW
          rules:
            - from: [{principals: ["%s"]}]
              to: [{methods: [GET], paths: ["/ok*"]}]
        """
            .formatted(CLIENT));
    String pod = "http://" + cluster.node2.ip("web-1") + ":8080";
    for (String base : List.of("http://" + VIP, pod)) {
      assertEquals("200", code("client", base + "/ok"), base);
      assertEquals("200", code("client", base + "/ok/more?x=1"), base);
      assertEquals("403", code("client", base + "/admin"), base);
      assertEquals("403", code("client", "-X", "POST", "-d", "x=1", base + "/ok"), base);
    }
    // Keep-alive: an allowed, a denied and an allowed request on one connection, in order.
    String three =
        curl(
            "client", "-s", "-w", "|%{http_code}\\n", pod + "/ok/1", pod + "/admin", pod + "/ok/3");
    List<String> codes =
        three.lines().filter(l -> l.startsWith("|")).map(l -> l.substring(1)).toList();
    assertEquals(List.of("200", "403", "200"), codes, three);
    assertTrue(three.contains("uri=/ok/3"), three);

    // Pipelined (one write, three requests, to the pod IP so node-1 relays the bytes as they are):
    // node-2's 403 for the middle one comes between the app's two answers, never before the first.
    String pipelined =
        cluster.node1.podExec(
            "client",
            "/usr/bin/python3",
            "-c",
            "import socket, sys, re\n"
                + "s = socket.create_connection((sys.argv[1], 8080), timeout=10)\n"
                + "r = ''.join('GET %s HTTP/1.1\\r\\nHost: web\\r\\n\\r\\n' % p"
                + " for p in ('/ok/p1', '/admin', '/ok/p3'))\n"
                + "s.sendall(r.encode())\n"
                + "d = b''\n"
                + "while d.count(b'HTTP/1.1 ') < 3 or not d.endswith(b'\\n'):\n"
                + "  c = s.recv(65536)\n"
                + "  if not c: break\n"
                + "  d += c\n"
                + "t = d.decode('latin-1')\n"
                + "print(' '.join(re.findall(r'HTTP/1.1 (\\d+)', t)), t.find('uri=/ok/p1') < t.find('RBAC') < t.find('uri=/ok/p3'))\n",
            cluster.node2.ip("web-1"));
    assertEquals("200 403 200 True", pipelined.strip(), pipelined);

    // Another workload's principal: no request can be allowed, so node-2 refuses the CONNECT
    // itself (the client's node answers 503 on its L7 path, a reset on its L4 path).
    assertTrue(!code("other", pod + "/ok").equals("200"));

    int served = web.requests();
    assertTrue(served >= 7, "allowed requests reached the app: " + served);
    cluster.node2.assertCounted(
        "nodemesh_policy_denials_total",
        "reason=\"no_allow_match\"",
        "reporter=\"destination\"",
        "source_principal=\"" + CLIENT + "\"");
  }

  @Test
  void denyAdminHoldsForEverySpellingOfThePath() throws Exception {
    start(Mesh.DENY_ADMIN_TO_WEB);
    String pod = "http://" + cluster.node2.ip("web-1") + ":8080";
    for (String base : List.of("http://" + VIP, pod)) {
      assertEquals("403", code("client", base + "/admin"), base);
      assertEquals("403", code("client", "--path-as-is", base + "/%61dmin"), base);
      assertEquals("403", code("client", "--path-as-is", base + "/./admin/x"), base);
      assertEquals("403", code("client", "--path-as-is", base + "/x/../admin"), base);
      assertEquals("200", code("client", base + "/public"), base);
      assertEquals("200", code("client", "-X", "POST", "-d", "x=1", base + "/other"), base);
    }
    // The app saw the path as the policy read it.
    String body = curl("client", "-s", "--path-as-is", pod + "/%70ublic/./x");
    assertTrue(body.contains("uri=/public/x"), body);
  }

  /**
   * The caller on the way: through the VIP (the L7 path on node-1) the app's {@code
   * x-forwarded-for} is the client pod's IP in both modes (in eBPF mode the proxy's downstream peer
   * is 127.0.0.1), and node-2's metrics name the source workload the tunnel's mTLS proved.
   */
  @Test
  void theCallerIsNamedOnTheWay() throws Exception {
    start(
        """
        apiVersion: security.nodemesh.dev/v1alpha1
        kind: AuthorizationPolicy
        metadata: {name: get-only, namespace: default}
        spec:
          selector: {matchLabels: {app: web}}
          action: ALLOW
          rules:
            - to: [{methods: [GET]}]
        """);
    String body = curl("client", "-s", "--max-time", "10", "http://" + VIP + "/who");
    assertTrue(
        body.contains("h:x-forwarded-for=" + cluster.node1.ip("client") + "\n"),
        "x-forwarded-for: " + body);
    cluster.node2.assertCounted(
        "nodemesh_tcp_connections_opened_total",
        "reporter=\"destination\"",
        "source_workload=\"client\"",
        "destination_workload=\"web-1\"");
  }

  private String code(String pod, String... args) throws IOException {
    List<String> a =
        new ArrayList<>(List.of("-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10"));
    a.addAll(List.of(args));
    try {
      return curl(pod, a.toArray(String[]::new));
    } catch (IOException e) {
      return "error: " + e.getMessage(); // curl exits non-zero on a reset
    }
  }

  private String curl(String pod, String... args) throws IOException {
    return cluster.node1.curl(pod, args);
  }
}
