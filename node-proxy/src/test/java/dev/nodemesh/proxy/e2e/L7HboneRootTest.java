package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Queue;
import java.util.Random;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * L7 routing to endpoints on another node: the client on node-1 calls Service web, whose HTTPRoute
 * sends header-matched and split requests to web-v2-1 on node-2 (the rest to web-v1-1 on node-1).
 * Requests to node-2 go through the client workload's HBONE tunnel: node-2 sees the client's SPIFFE
 * ID, and the underlay carries no plaintext.
 */
@RootTest
class L7HboneRootTest {
  private static final String TD = "cluster.local";
  private static final String VIP = "10.97.0.20";
  private static final SpiffeId CLIENT = new SpiffeId(TD, "default", "client");

  @TempDir static Path tmp;
  private static TwoNodeCluster cluster;
  private static HttpTestServer v2;
  private static final Queue<ConnectionSource> seenByNode2 = new ConcurrentLinkedQueue<>();

  @BeforeAll
  static void setUp() throws Exception {
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
    cluster.startProxies(new TestIdentities(root), allow, new TestIdentities(root), spy);
    n1.enrol("client");
    n1.enrol("web-v1-1");
    n2.enrol("web-v2-1");
  }

  @AfterAll
  static void tearDown() throws Exception {
    if (cluster != null) {
      cluster.close();
    }
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
        metric(cluster.node1, "nodemesh_tunnel_streams_opened_total", "source") > 0,
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
    Process tcpdump =
        new ProcessBuilder(
                "ip",
                "netns",
                "exec",
                cluster.node1.nodeNetns().name(),
                "tcpdump",
                "--immediate-mode",
                "-i",
                cluster.underlay(),
                "-n",
                "-U",
                "-s",
                "0",
                "-w",
                pcap.toString())
            .redirectErrorStream(true)
            .redirectOutput(log.toFile())
            .start();
    String marker = "NODEMESH-L7-MARKER-" + Long.toHexString(new Random().nextLong());
    try {
      await(() -> Files.exists(log) && readQuietly(log).contains("listening on"), "tcpdump ready");
      for (int i = 0; i < 5; i++) {
        String out =
            curl("-s", "-H", "x-version: v2", "-H", "x-marker: " + marker, "http://" + VIP + "/m");
        assertTrue(out.contains("pod=web-v2-1"), out);
        assertTrue(out.contains("h:x-marker=" + marker), out);
      }
      await(() -> Files.size(pcap) > 4_000, "the requests in the capture");
    } finally {
      tcpdump.destroy(); // SIGTERM to tcpdump's own PID: it flushes and exits
      if (!tcpdump.waitFor(10, TimeUnit.SECONDS)) {
        tcpdump.destroyForcibly();
      }
    }
    byte[] captured = Files.readAllBytes(pcap);
    assertFalse(
        contains(captured, marker.getBytes(java.nio.charset.StandardCharsets.UTF_8)),
        "the marker crossed the underlay in plaintext");
    assertTrue(contains(captured, new byte[] {0x17, 0x03, 0x03}), "no TLS records captured");
  }

  private static String curl(String... args) throws IOException {
    String[] cmd = new String[args.length + 1];
    cmd[0] = "curl";
    System.arraycopy(args, 0, cmd, 1, args.length);
    return cluster.node1.pod("client").exec(cmd);
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

  private static double metric(TestNode node, String name, String reporter) {
    double sum = 0;
    for (String l : node.proxy().dataPlane().metrics().scrape().split("\n")) {
      if (l.startsWith(name + "{") && l.contains("reporter=\"" + reporter + "\"")) {
        sum += Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1));
      }
    }
    return sum;
  }

  private static void await(Check check, String what) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(60);
    while (!check.ok()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(50);
    }
  }

  @FunctionalInterface
  private interface Check {
    boolean ok() throws Exception;
  }

  private static String readQuietly(Path p) {
    try {
      return Files.readString(p);
    } catch (IOException e) {
      return "";
    }
  }

  private static boolean contains(byte[] hay, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= hay.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (hay[i + j] != needle[j]) {
          continue outer;
        }
      }
      return true;
    }
    return false;
  }
}
