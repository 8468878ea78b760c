package dev.nodemesh.proxy.conformance;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The Gateway API conformance suite's mesh set-up ({@code conformance/mesh/manifests.yaml}) on two
 * local nodes, for the {@code Mesh*} conformance tests: namespace {@code gateway-conformance-mesh}
 * with Services {@code echo} (every version), {@code echo-v1} and {@code echo-v2}, each with ports
 * 80 and 8080 (to the pods' 8080, {@code appProtocol: http}) and 7070 (gRPC, h2c); pod {@code
 * echo-v1} on node-1 and {@code echo-v2} on node-2 (so v2 is always reached through the HBONE
 * tunnel); and the calling pods: {@code client} in the mesh namespace and {@code consumer} in
 * {@code gateway-conformance-mesh-consumer}, both on node-1.
 *
 * <p>Differences from the upstream suite, none changing what a test expects: the suite calls from
 * inside the {@code echo-v1} pod, here a pod of its own in the same namespace does (so a request
 * never has to hairpin into its caller); names resolve through the cluster DNS there, here curl
 * dials the Service's cluster IP with the name as {@code Host}; the backends are {@code
 * HttpTestServer} (which echoes the request's path and headers and names its pod) instead of the
 * suite's echo image. Each test writes its routes as the suite applies its manifest, and waits
 * until both proxies hold exactly those routes before it sends anything. The callers are pod
 * processes (curl, python), so the mesh runs in either interception mode, iptables or eBPF.
 */
final class ConformanceMesh implements AutoCloseable {
  static final String NS = "gateway-conformance-mesh";
  static final String CONSUMER_NS = "gateway-conformance-mesh-consumer";

  /** Cluster IPs of echo, echo-v1, echo-v2. */
  static final Map<String, String> VIPS =
      Map.of("echo", "10.97.0.60", "echo-v1", "10.97.0.61", "echo-v2", "10.97.0.62");

  /** The caller pods: name to namespace. */
  static final Map<String, String> CALLERS = Map.of("client", NS, "consumer", CONSUMER_NS);

  private final TwoNodeCluster cluster;
  private final Interception.Setup modes;

  private ConformanceMesh(TwoNodeCluster cluster, Interception.Setup modes) {
    this.cluster = cluster;
    this.modes = modes;
  }

  /**
   * Builds the mesh with both proxies intercepting in {@code mode}; {@code grpcMethods} non-empty
   * also serves gRPC on 7070 in both echo pods.
   */
  static ConformanceMesh start(Path dir, Interception mode, String... grpcMethods)
      throws Exception {
    Interception.Setup modes = mode.setUp();
    TwoNodeCluster cluster = null;
    try {
      cluster = TwoNodeCluster.create(dir);
      ConformanceMesh mesh = new ConformanceMesh(cluster, modes);
      mesh.build(grpcMethods);
      return mesh;
    } catch (Exception | Error e) {
      try {
        if (cluster != null) {
          cluster.close();
        }
      } finally {
        modes.close();
      }
      throw e;
    }
  }

  private void build(String[] grpcMethods) throws Exception {
    TestNode n1 = cluster.node1;
    TestNode n2 = cluster.node2;
    n1.addPod("client", 10);
    n1.addPod("consumer", 12);
    n1.addPod("echo-v1", 11);
    n2.addPod("echo-v2", 11);
    n1.serveHttp("echo-v1", 8080);
    n2.serveHttp("echo-v2", 8080);
    if (grpcMethods.length > 0) {
      n1.serveGrpc("echo-v1", 7070, grpcMethods);
      n2.serveGrpc("echo-v2", 7070, grpcMethods);
    }
    cluster.writeConfig(
        "pods.yaml",
        pod("client", NS, n1.ip("client"), "client", "", "node-1")
            + pod("consumer", CONSUMER_NS, n1.ip("consumer"), "client", "", "node-1")
            + pod("echo-v1", NS, n1.ip("echo-v1"), "echo", "v1", "node-1")
            + pod("echo-v2", NS, n2.ip("echo-v2"), "echo", "v2", "node-2"));
    cluster.writeConfig(
        "services.yaml",
        service("echo", "{app: echo}")
            + service("echo-v1", "{app: echo, version: v1}")
            + service("echo-v2", "{app: echo, version: v2}"));
    cluster.writeConfig("routes.yaml", "# no routes yet\n");
    cluster.startProxiesWithPolicy(modes);
    enrol(n1, "client", NS);
    enrol(n1, "consumer", CONSUMER_NS);
    enrol(n1, "echo-v1", NS);
    enrol(n2, "echo-v2", NS);
  }

  private static void enrol(TestNode node, String pod, String namespace) {
    // The caller's namespace is what the node agent is told at CNI ADD.
    node.agent().addPod(node.podMessage(pod).toBuilder().setNamespace(namespace).build());
  }

  TwoNodeCluster cluster() {
    return cluster;
  }

  /** The IP of an echo pod ("echo-v1" on node-1, "echo-v2" on node-2). */
  String podIp(String pod) {
    return pod.equals("echo-v2") ? cluster.node2.ip(pod) : cluster.node1.ip(pod);
  }

  /**
   * Applies a test's manifest (the routes of one conformance test; empty: none) and waits until
   * both proxies serve exactly the routes it names, so no answer can come from another test's.
   */
  void apply(String yaml) throws Exception {
    Set<String> want = new TreeSet<>();
    String kind = "";
    for (String line : yaml.split("\n")) {
      // Manifests here are block-style: a top-level kind, then metadata's name two spaces in.
      if (line.startsWith("kind:")) {
        kind = line.substring(5).strip();
      } else if (line.startsWith("  name:")
          && (kind.equals("HTTPRoute") || kind.equals("GRPCRoute"))) {
        want.add(line.substring(7).strip());
      }
    }
    cluster.writeConfig("routes.yaml", yaml.isBlank() ? "# no routes\n" : yaml);
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      Set<String> n1 = routeNames(cluster.node1);
      Set<String> n2 = routeNames(cluster.node2);
      if (n1.equals(want) && n2.equals(want)) {
        return;
      }
      if (System.nanoTime() > deadline) {
        assertEquals(want, n1, "routes of node-1 after applying the manifest");
        assertEquals(want, n2, "routes of node-2 after applying the manifest");
      }
      Thread.sleep(50);
    }
  }

  private static Set<String> routeNames(TestNode node) {
    return node.proxy().dataPlane().snapshots().current().httpRoutes().stream()
        .map(HttpRoute::name)
        .collect(Collectors.toCollection(TreeSet::new));
  }

  /** One HTTP/1.1 answer as the caller saw it. */
  record Reply(int status, Map<String, String> headers, String body) {
    /** The serving pod's name (HttpTestServer's {@code pod=} line), or "" for a local answer. */
    String pod() {
      return line("pod=");
    }

    /** The request-target the app received. */
    String uri() {
      return line("uri=");
    }

    /** A request header as the app received it (name in any case), or null when absent. */
    String requestHeader(String name) {
      String v = line("h:" + name.toLowerCase(Locale.ROOT) + "=");
      return body.contains("\nh:" + name.toLowerCase(Locale.ROOT) + "=") ? v : null;
    }

    /** A response header (name in any case), or null. */
    String header(String name) {
      return headers.get(name.toLowerCase(Locale.ROOT));
    }

    private String line(String prefix) {
      for (String l : body.split("\n")) {
        if (l.startsWith(prefix)) {
          return l.substring(prefix.length());
        }
      }
      return "";
    }

    @Override
    public String toString() {
      return status + " " + headers + "\n" + body;
    }
  }

  /**
   * A request from {@code caller} to {@code target} (a Service name with an optional port, or an
   * IP:port) with the given Host and headers, as the suite's echo client sends it: the name's
   * cluster IP is dialled (the suite's DNS) and {@code host} goes in the Host header.
   */
  Reply send(String caller, String target, String host, String path, Map<String, String> headers)
      throws IOException {
    String authority = target;
    String name = target.contains(":") ? target.substring(0, target.indexOf(':')) : target;
    String vip = VIPS.get(name);
    if (vip != null) {
      authority = vip + target.substring(name.length());
    }
    List<String> args =
        new ArrayList<>(List.of("-s", "-i", "--max-time", "10", "-H", "Host: " + host));
    headers.forEach((k, v) -> args.addAll(List.of("-H", k + ": " + v)));
    args.add("http://" + authority + path);
    String out;
    try {
      out = cluster.node1.curl(caller, args.toArray(String[]::new));
    } catch (IOException e) {
      return new Reply(0, Map.of(), "curl failed: " + e.getMessage());
    }
    return parse(out);
  }

  Reply send(String caller, String target, String path) throws IOException {
    return send(caller, target, target, path, Map.of());
  }

  static Reply parse(String curlI) {
    int split = curlI.indexOf("\r\n\r\n");
    String head = split < 0 ? curlI : curlI.substring(0, split);
    String body = split < 0 ? "" : curlI.substring(split + 4);
    String[] lines = head.split("\r\n");
    int status = 0;
    if (lines.length > 0 && lines[0].startsWith("HTTP/")) {
      String[] f = lines[0].split(" ");
      status = Integer.parseInt(f[1]);
    }
    Map<String, String> headers = new LinkedHashMap<>();
    for (int i = 1; i < lines.length; i++) {
      int c = lines[i].indexOf(':');
      if (c > 0) {
        headers.merge(
            lines[i].substring(0, c).strip().toLowerCase(Locale.ROOT),
            lines[i].substring(c + 1).strip(),
            (a, b) -> a + "," + b);
      }
    }
    return new Reply(status, headers, "\n" + body);
  }

  /**
   * Which pod served each of {@code n} requests from {@code caller} to Service {@code service} (one
   * curl, keep-alive), as the suite's weighted-distribution check counts them.
   */
  Map<String, Integer> servedBy(String caller, String service, String path, int n)
      throws IOException {
    List<String> args =
        new ArrayList<>(List.of("-s", "--max-time", "60", "-H", "Host: " + service));
    String url = "http://" + VIPS.get(service) + path;
    for (int i = 0; i < n; i++) {
      args.add(url);
    }
    String out = cluster.node1.curl(caller, args.toArray(String[]::new));
    Map<String, Integer> counts = new java.util.TreeMap<>();
    for (String l : out.split("\n")) {
      if (l.startsWith("pod=")) {
        counts.merge(l.substring(4), 1, Integer::sum);
      }
    }
    return counts;
  }

  /**
   * Runs {@code check} until it passes three times in a row (the suite's
   * MakeRequestAndExpectEventuallyConsistentResponse), for up to 20 s; fails with its last error.
   */
  static void eventually(Check check) throws Exception {
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    int passed = 0;
    while (true) {
      try {
        check.run();
        if (++passed == 3) {
          return;
        }
      } catch (AssertionError e) {
        passed = 0;
        if (System.nanoTime() > deadline) {
          throw e;
        }
        Thread.sleep(100);
      }
    }
  }

  @FunctionalInterface
  interface Check {
    void run() throws Exception;
  }

  private static String pod(
      String name, String namespace, String ip, String app, String version, String node) {
    String labels =
        version.isEmpty() ? "{app: " + app + "}" : "{app: " + app + ", version: " + version + "}";
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: %s
          uid: uid-%s
          labels: %s
        spec:
          nodeName: %s
          containers:
            - name: app
              ports:
                - {name: http, containerPort: 8080}
                - {name: grpc, containerPort: 7070}
        status:
          podIP: %s
        ---
        """
        .formatted(name, namespace, name, labels, node, ip);
  }

  private static String service(String name, String selector) {
    return """
        apiVersion: v1
        kind: Service
        metadata: {name: %s, namespace: %s}
        spec:
          clusterIP: %s
          selector: %s
          ports:
            - {name: http, port: 80, targetPort: 8080, appProtocol: http}
            - {name: http-alt, port: 8080, targetPort: 8080, appProtocol: http}
            - {name: grpc, port: 7070, targetPort: 7070, appProtocol: kubernetes.io/h2c}
        ---
        """
        .formatted(name, NS, VIPS.get(name), selector);
  }

  @Override
  public void close() throws Exception {
    try {
      cluster.close();
    } finally {
      modes.close();
    }
  }
}
