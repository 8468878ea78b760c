package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import java.io.IOException;
import java.net.InetAddress;
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
 * The app's {@code accept()} sees the client pod's address on every path, in both interception
 * modes: same node and across nodes (HBONE), L4 and L7. The proxy delivers from inside the
 * destination pod with a socket bound to the caller's address; the replies come back (every request
 * here gets its answer), and un-enrolling the pod takes every rule and route of that away.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class CallerAddressRootTest {
  @Parameter Interception mode;
  private Interception.Setup modes;
  private static final String VIP = "10.97.0.20";
  private static final String NEAR_VIP = "10.97.0.21";
  private static final String FAR_VIP = "10.97.0.22";
  private static final String NEAR_VIP6 = "fd00:97::21";

  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private HttpTestServer near;
  private HttpTestServer far;

  @BeforeEach
  void setUp() throws Exception {
    cluster = TwoNodeCluster.create(tmp);
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("web-near", 11);
    n2.addPod("web-far", 11);
    near = n1.serveHttp("web-near", 8080);
    far = n2.serveHttp("web-far", 8080);
    n1.serve("web-near", 9000, TestServer.Mode.NAME);
    n2.serve("web-far", 9000, TestServer.Mode.NAME);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", n1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("web-near", n1.ip("web-near"), "near", "node-1", "near")
            + Mesh.pod("web-far", n2.ip("web-far"), "far", "node-2", "far"));
    cluster.writeConfig(
        "services.yaml",
        Mesh.httpService("web-near", NEAR_VIP, "near")
            + Mesh.httpService("web-far", FAR_VIP, "far"));
    cluster.writeConfig("routes.yaml", ROUTE);
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    modes = mode.setUp();
    cluster.startProxies(
        modes,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF,
        new TestIdentities(root),
        allow,
        AccessLogSettings.OFF);
    n1.enrol("client");
    n1.enrol("web-near");
    n2.enrol("web-far");
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (cluster != null) {
        cluster.close();
      }
    } finally {
      if (modes != null) {
        modes.close();
      }
    }
  }

  @Test
  void theAppSeesTheClientPodOnEveryPath() throws IOException {
    String client = cluster.node1.ip("client");
    // L4, by pod IP: same node, then across nodes through the tunnel.
    assertEquals("web-near " + client, nameLine(cluster.node1.ip("web-near")));
    assertEquals("web-far " + client, nameLine(cluster.node2.ip("web-far")));
    // L7 (the route sends /far to the other node): HTTP/1.1 and h2c, each request answered.
    for (String path : List.of("/near", "/far")) {
      String h1 = cluster.node1.curl("client", "-s", "--max-time", "10", "http://" + VIP + path);
      String h2 =
          cluster.node1.curl(
              "client",
              "-s",
              "--max-time",
              "10",
              "--http2-prior-knowledge",
              "http://" + VIP + path);
      for (String out : List.of(h1, h2)) {
        assertTrue(out.contains("pod=web-" + path.substring(1)), out);
        assertTrue(out.contains("h:x-forwarded-for=" + client), out);
      }
    }
    assertEquals(List.of(client), near.peers.stream().distinct().toList());
    assertEquals(List.of(client), far.peers.stream().distinct().toList());
    assertEquals(2, near.requests());
    assertEquals(2, far.requests());
    // Node-2 names the caller it proved by mTLS.
    String m2 = cluster.node2.proxy().dataPlane().metrics().scrape();
    assertTrue(
        m2.lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_tcp_connections_opened_total{")
                        && l.contains("reporter=\"destination\"")
                        && l.contains("source_workload=\"client\"")
                        && l.contains("destination_workload=\"web-far\"")),
        m2);
    // Nothing fell back to the pod's own address.
    for (TestNode n : List.of(cluster.node1, cluster.node2)) {
      String m = n.proxy().dataPlane().metrics().scrape();
      assertTrue(
          m.lines()
              .anyMatch(
                  l ->
                      l.startsWith("nodemesh_caller_address_fallbacks_total{")
                          && l.endsWith(" 0.0")),
          m);
    }
  }

  /**
   * Dual stack: client, web-near, web-far and a pod outside the mesh (on node-1) get IPv6
   * addresses, the config gives the three mesh pods both (and web-near's Service an IPv6 cluster
   * IP), and they are enrolled again. Over IPv6 the app then sees the caller's IPv6 address: on the
   * same node L4 by pod IP, L7 through the IPv6 cluster IP and inbound from the pod outside the
   * mesh; across nodes through an HBONE tunnel dialled to web-far's IPv6 address. The proxy's
   * delivery from the caller's address must not come back to the proxy (in eBPF mode the inbound
   * program would capture it again, and again): every connection is answered, each is counted once,
   * none stays open, and nothing fell back to the pod's own address. IPv4 keeps working beside it.
   */
  @Test
  void overIpv6TheAppSeesTheCallersIpv6AddressAndNothingLoops() throws Exception {
    TestNode n1 = cluster.node1;
    n1.addPod("outside", 20);
    String client6 = n1.addIpv6("client", 10);
    String near6 = n1.addIpv6("web-near", 11);
    String outside6 = n1.addIpv6("outside", 20);
    TestNode n2 = cluster.node2;
    String far6 = n2.addIpv6("web-far", 11);
    cluster.writeConfig(
        "pods.yaml",
        dualStack(
                Mesh.pod("client", n1.ip("client"), "client", "node-1", "client"),
                n1.ip("client"),
                client6)
            + dualStack(
                Mesh.pod("web-near", n1.ip("web-near"), "near", "node-1", "near"),
                n1.ip("web-near"),
                near6)
            + dualStack(
                Mesh.pod("web-far", n2.ip("web-far"), "far", "node-2", "far"),
                n2.ip("web-far"),
                far6));
    cluster.writeConfig(
        "services.yaml",
        Mesh.httpService("web-near", NEAR_VIP, "near")
                .replace(
                    "clusterIP: " + NEAR_VIP + "\n",
                    "clusterIP: "
                        + NEAR_VIP
                        + "\n  clusterIPs: ["
                        + NEAR_VIP
                        + ", \""
                        + NEAR_VIP6
                        + "\"]\n")
            + Mesh.httpService("web-far", FAR_VIP, "far"));
    // A route on web-near's Service, so that its connections take the L7 path.
    cluster.writeConfig("routes.yaml", ROUTE + "---\n" + Mesh.httpRoute("web-near"));
    InetAddress vip6 = InetAddress.getByName(NEAR_VIP6);
    InetAddress near6Address = InetAddress.getByName(near6);
    InetAddress far6Address = InetAddress.getByName(far6);
    for (TestNode n : List.of(n1, n2)) {
      waitFor(
          () -> {
            var snapshot = n.proxy().dataPlane().snapshots().current();
            var service6 = snapshot.serviceByVip(vip6);
            return service6 != null
                && !snapshot.httpRoutes(service6.id()).isEmpty()
                && snapshot.workloadByIp(near6Address) != null
                && snapshot.workloadByIp(far6Address) != null;
          },
          () -> "the IPv6 addresses never reached " + n.nodeName() + "'s config");
    }
    n1.enrol("client");
    n1.enrol("web-near");
    n2.enrol("web-far");
    String clientText = InetAddress.getByName(client6).getHostAddress();
    String outsideText = InetAddress.getByName(outside6).getHostAddress();
    double opened = n1.metric("nodemesh_tcp_connections_opened_total");

    // L4 by the pod's IPv6 address, from the client: the app sees the client's IPv6 address.
    for (int i = 0; i < 3; i++) {
      assertEquals("web-near " + clientText, nameLine("client", near6));
    }
    // L7 through the IPv6 cluster IP (the route sends everything to web-near).
    int before = near.requests();
    String h1 = n1.curl("client", "-s", "-g", "--max-time", "10", "http://[" + NEAR_VIP6 + "]/six");
    assertTrue(h1.contains("pod=web-near"), h1);
    String xff =
        h1.lines()
            .filter(l -> l.startsWith("h:x-forwarded-for="))
            .findFirst()
            .orElseThrow(() -> new AssertionError(h1))
            .substring("h:x-forwarded-for=".length());
    assertEquals(InetAddress.getByName(client6), InetAddress.getByName(xff), h1);
    assertEquals(before + 1, near.requests());
    assertEquals(clientText, near.peers.stream().skip(before).findFirst().orElseThrow());
    // Inbound from a pod outside the mesh, captured on [::]:15006 in web-near: the app sees that
    // pod's IPv6 address.
    assertEquals("web-near " + outsideText, nameLine("outside", near6));
    // IPv4 beside it, unchanged.
    assertEquals("web-near " + n1.ip("client"), nameLine("client", n1.ip("web-near")));
    // Across nodes, through the tunnel to web-far's IPv6 address: node-2 delivers from the
    // client's IPv6 address (the tunnel's source) and names the caller it proved.
    double opened2 = n2.metric("nodemesh_tcp_connections_opened_total");
    assertEquals("web-far " + clientText, nameLine("client", far6));
    n2.assertCounted(
        "nodemesh_tcp_connections_opened_total",
        "reporter=\"destination\"",
        "source_workload=\"client\"",
        "destination_workload=\"web-far\"");

    // Six L4 connections through node-1's proxy (the L7 one is counted as a request), one of them
    // through node-2's, each counted once: a delivery captured again would be counted (and
    // delivered) again and again until the pod's budget ran out.
    double counted = n1.metric("nodemesh_tcp_connections_opened_total") - opened;
    assertEquals(6.0, counted, "connections counted by node-1");
    double counted2 = n2.metric("nodemesh_tcp_connections_opened_total") - opened2;
    assertTrue(counted2 >= 1 && counted2 <= 2, "connections counted by node-2: " + counted2);
    for (TestNode n : List.of(n1, n2)) {
      waitFor(
          () -> n.metric("nodemesh_tcp_connections_open") == 0,
          () -> "connections left open: " + n.proxy().dataPlane().metrics().scrape());
      String m = n.proxy().dataPlane().metrics().scrape();
      assertTrue(
          m.lines()
              .anyMatch(
                  l ->
                      l.startsWith("nodemesh_caller_address_fallbacks_total{")
                          && l.endsWith(" 0.0")),
          m);
    }
  }

  /** {@code pod} (a Mesh.pod document) with {@code ip6} as its second podIP. */
  private static String dualStack(String pod, String ip, String ip6) {
    String one = "  podIP: " + ip + "\n";
    assertTrue(pod.contains(one), pod);
    return pod.replace(one, one + "  podIPs:\n    - ip: " + ip + "\n    - ip: \"" + ip6 + "\"\n");
  }

  @Test
  void unenrolmentLeavesNoRuleOrRouteOfOurs() throws IOException {
    TestNode n1 = cluster.node1;
    assertTrue(n1.pod("web-near").exec("ip", "rule", "show").contains("lookup 1338"));
    assertTrue(n1.pod("web-near").exec("iptables-save", "-t", "mangle").contains("NODEMESH"));
    // Dual stack: enrolled again with an IPv6 address, it gets the same for IPv6.
    n1.addIpv6("web-near", 11);
    n1.enrol("web-near");
    String rules6 = n1.pod("web-near").exec("ip", "-6", "rule", "show");
    assertTrue(rules6.contains("fwmark 0x53a lookup 1338"), rules6);
    assertTrue(rules6.contains("fwmark 0x539 oif lo lookup 1338"), rules6);
    assertTrue(n1.pod("web-near").exec("ip6tables-save", "-t", "mangle").contains("NODEMESH"));
    n1.agent().delPod("uid-web-near");
    for (String[] cmd :
        List.of(
            new String[] {"ip", "-4", "rule", "show"},
            new String[] {"ip", "-6", "rule", "show"},
            new String[] {"ip", "-4", "route", "show", "table", "all"},
            new String[] {"ip", "-6", "route", "show", "table", "all"},
            new String[] {"iptables-save", "-t", "mangle"},
            new String[] {"ip6tables-save", "-t", "mangle"},
            new String[] {"iptables-save", "-t", "nat"})) {
      String out = n1.pod("web-near").exec(cmd);
      assertFalse(out.contains("1338") || out.contains("NODEMESH"), String.join(" ", cmd) + out);
    }
    // Not captured any more: the app answers the client directly, from its own connection.
    assertEquals("web-near " + n1.ip("client"), nameLine(n1.ip("web-near")));
  }

  /** The first line the NAME server on port 9000 at {@code ip} answers a client pod process. */
  private String nameLine(String ip) throws IOException {
    return nameLine("client", ip);
  }

  /** The same from a process in node-1's pod {@code pod}; {@code ip} may be IPv6. */
  private String nameLine(String pod, String ip) throws IOException {
    return cluster
        .node1
        .podExec(
            pod,
            "python3",
            "-c",
            "import socket\n"
                + "s=socket.create_connection(('"
                + ip
                + "',9000),timeout=10)\n"
                + "print(s.makefile().readline().strip(), flush=True)\n")
        .strip();
  }

  /** Service web (VIP) routes /far to web-far on node-2 and the rest to web-near on node-1. */
  private static final String ROUTE =
      """
      apiVersion: v1
      kind: Service
      metadata:
        name: web
        namespace: default
      spec:
        clusterIP: %s
        selector:
          app: near
        ports:
          - name: http
            port: 80
            targetPort: http
            appProtocol: http
      ---
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
              - path: {type: PathPrefix, value: /far}
            backendRefs:
              - {name: web-far, port: 80}
          - backendRefs:
              - {name: web-near, port: 80}
      """
          .formatted(VIP);
}
