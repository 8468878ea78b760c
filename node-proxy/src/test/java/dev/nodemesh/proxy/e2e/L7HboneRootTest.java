package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.testing.UnderlayCapture;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * L7 routing to endpoints on another node: the client on node-1 calls Service web, whose HTTPRoute
 * sends header-matched and split requests to web-v2-1 on node-2 (the rest to web-v1-1 on node-1).
 * Requests to node-2 go through the client workload's HBONE tunnel: node-2 sees the client's SPIFFE
 * ID, and the underlay carries no plaintext.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class L7HboneRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  private static final Duration WAIT = Duration.ofSeconds(60);
  private static final String TD = "cluster.local";
  private static final String VIP = "10.97.0.20";
  private static final SpiffeId CLIENT = new SpiffeId(TD, "default", "client");

  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private HttpTestServer v2;
  private final Queue<ConnectionSource> seenByNode2 = new ConcurrentLinkedQueue<>();

  @BeforeEach
  void setUp() throws Exception {
    cluster = TwoNodeCluster.create(tmp);
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("web-v1-1", 11);
    n2.addPod("web-v2-1", 11);
    n1.serveHttp("web-v1-1", 8080);
    v2 = n2.serveHttp("web-v2-1", 8080);
    cluster.writeConfig(
        "pods.yaml",
        pod("client", n1.ip("client"), "client", "none", "node-1")
            + pod("web-v1-1", n1.ip("web-v1-1"), "web", "v1", "node-1")
            + pod("web-v2-1", n2.ip("web-v2-1"), "web", "v2", "node-2"));
    cluster.writeConfig(
        "services.yaml",
        service("web", VIP, "app: web")
            + service("web-v1", "10.97.0.21", "version: v1")
            + service("web-v2", "10.97.0.22", "version: v2"));
    cluster.writeConfig("routes.yaml", ROUTE);
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    Authorizer spy =
        (s, d, p, src) -> {
          seenByNode2.add(src);
          return new Decision(true, "default-allow", "allowed");
        };
    modes = mode.setUp();
    cluster.startProxies(
        modes,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF,
        new TestIdentities(root),
        spy,
        AccessLogSettings.OFF);
    n1.enrol("client");
    n1.enrol("web-v1-1");
    n2.enrol("web-v2-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(cluster, modes);
  }

  @Test
  void aHeaderMatchRoutesToTheOtherNodeThroughTheTunnelWithTheCallersIdentity() throws IOException {
    String h1 = curl("-s", "-H", "x-version: v2", "http://" + VIP + "/a");
    assertTrue(h1.contains("pod=web-v2-1"), h1);
    assertTrue(h1.contains("h:x-routed=v2"), h1);
    String h2 =
        curl("-s", "-i", "--http2-prior-knowledge", "-H", "x-version: v2", "http://" + VIP + "/b");
    assertTrue(h2.startsWith("HTTP/2 200"), h2);
    assertTrue(h2.contains("pod=web-v2-1"), h2);
    String local = curl("-s", "http://" + VIP + "/c");
    assertTrue(local.contains("pod=web-v1-1"), local);
    // A keep-alive upstream connection from an earlier test may carry these requests: its tunnel
    // stream was opened then.
    assertTrue(
        cluster.node1.metric("nodemesh_tunnel_streams_opened_total", "reporter=\"source\"") > 0,
        "requests to node-2 used a tunnel stream");
    assertTrue(
        seenByNode2.stream()
            .anyMatch(
                s ->
                    CLIENT.equals(s.principal())
                        && s.mutualTls()
                        && s.address().getHostAddress().equals(cluster.node1.ip("client"))),
        "node-2 authorized the client's SPIFFE ID: " + seenByNode2);
    assertTrue(
        seenByNode2.stream().allMatch(s -> CLIENT.equals(s.principal())), seenByNode2.toString());
  }

  @Test
  void aWeightedSplitReachesBothNodesOverOneKeepAliveConnection() throws IOException {
    int n = 400;
    int before = v2.requests();
    String out = curl("-s", "--max-time", "50", "http://" + VIP + "/split/[1-" + n + "]");
    Map<String, Integer> served = new HashMap<>();
    for (String line : out.split("\n")) {
      if (line.startsWith("pod=")) {
        served.merge(line.substring(4), 1, Integer::sum);
      }
    }
    assertEquals(n, served.values().stream().mapToInt(Integer::intValue).sum(), served.toString());
    int remote = served.getOrDefault("web-v2-1", 0);
    // 50/50: far outside chance to be below 30 % either way over 400 requests.
    assertTrue(remote > n * 3 / 10 && remote < n * 7 / 10, served.toString());
    assertEquals(remote, v2.requests() - before);
  }

  @Test
  void theUnderlayCarriesNoPlaintextOfAnL7Request() throws Exception {
    Path pcap = tmp.resolve("l7-underlay.pcap");
    Path log = tmp.resolve("l7-tcpdump.log");
    UnderlayCapture capture = UnderlayCapture.start(cluster, pcap, log);
    String marker = "NODEMESH-L7-MARKER-" + Long.toHexString(new Random().nextLong());
    try {
      for (int i = 0; i < 5; i++) {
        String out =
            curl("-s", "-H", "x-version: v2", "-H", "x-marker: " + marker, "http://" + VIP + "/m");
        assertTrue(out.contains("pod=web-v2-1"), out);
        assertTrue(out.contains("h:x-marker=" + marker), out);
      }
      capture.awaitMoreThan(4_000, "the requests in the capture");
    } finally {
      capture.close();
    }
    byte[] captured = capture.bytes();
    assertFalse(
        UnderlayCapture.contains(
            captured, marker.getBytes(java.nio.charset.StandardCharsets.UTF_8)),
        "the marker crossed the underlay in plaintext");
    assertTrue(
        UnderlayCapture.contains(captured, new byte[] {0x17, 0x03, 0x03}),
        "no TLS records captured");
  }

  private String curl(String... args) throws IOException {
    return cluster.node1.curl("client", args);
  }

  private static String pod(String name, String ip, String app, String version, String node) {
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
          nodeName: %s
          serviceAccountName: %s
          containers:
            - name: app
              ports:
                - name: http
                  containerPort: 8080
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, version, node, app, ip);
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
        ---
        """
        .formatted(name, vip, selector);
  }

  private static final String ROUTE =
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
              - headers: [{name: x-version, value: v2}]
            filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: x-routed, value: v2}]
            backendRefs:
              - {name: web-v2, port: 80}
          - matches:
              - path: {type: PathPrefix, value: /split}
            backendRefs:
              - {name: web-v1, port: 80, weight: 50}
              - {name: web-v2, port: 80, weight: 50}
          - backendRefs:
              - {name: web-v1, port: 80}
      """;
}
