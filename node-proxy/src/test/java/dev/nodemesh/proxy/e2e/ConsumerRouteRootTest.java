package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.HttpTestServer;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * GEP-1426 producer and consumer routes end to end on one local node: team-a owns Service api (with
 * a producer route that tags its responses); team-b has a consumer route on it that sends team-b's
 * calls to its own backend alt, injects a fault on /fault and mirrors /mirror to its shadow.
 * Callers in team-a and team-c, curl inside their pods, must see none of team-b's route. Run in
 * both interception modes: the caller's namespace comes from the in-pod listener in each.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(ConsumerRouteRootTest.Kind.class)
class ConsumerRouteRootTest {
  enum Kind {
    IPTABLES,
    EBPF
  }

  private static final String API_VIP = "10.97.0.40";
  private static final String ALT_VIP = "10.97.0.41";
  private static final String SHADOW_VIP = "10.97.0.42";

  @Parameter Kind mode;
  @TempDir Path tmp;
  private TestNode node;
  private TestCgroup cgroup; // eBPF mode: the curl processes join it
  private TestBpffs bpffs;
  private Path pins;
  private HttpTestServer api;
  private HttpTestServer alt;
  private HttpTestServer shadow;

  /** pod name, host part, namespace, app label */
  private record Pod(String name, int host, String namespace, String app) {}

  private static final List<Pod> PODS =
      List.of(
          new Pod("client-a", 10, "team-a", "client"),
          new Pod("client-b", 11, "team-b", "client"),
          new Pod("client-c", 12, "team-c", "client"),
          new Pod("api-1", 13, "team-a", "api"),
          new Pod("alt-1", 14, "team-b", "alt"),
          new Pod("shadow-1", 15, "team-b", "shadow"));

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    StringBuilder pods = new StringBuilder();
    for (Pod p : PODS) {
      node.addPod(p.name(), p.host());
      pods.append(pod(p));
    }
    api = node.serveHttp("api-1", 8080);
    alt = node.serveHttp("alt-1", 8080);
    shadow = node.serveHttp("shadow-1", 8080);
    node.writeConfig("pods.yaml", pods.toString());
    node.writeConfig(
        "services.yaml",
        service("team-a", "api", API_VIP)
            + service("team-b", "alt", ALT_VIP)
            + service("team-b", "shadow", SHADOW_VIP));
    node.writeConfig("routes.yaml", ROUTES);
    if (mode == Kind.EBPF) {
      cgroup = TestCgroup.create("gamma");
      bpffs = TestBpffs.mount();
      pins = bpffs.path().resolve("nodemesh");
      node.startProxy(TransportKind.EPOLL, InterceptionMode.ebpf(cgroup.path(), pins));
    } else {
      node.startProxy(TransportKind.EPOLL);
    }
    for (Pod p : PODS) {
      // The caller's namespace is what the node agent was told for the pod (CNI ADD).
      node.agent()
          .addPod(node.podMessage(p.name()).toBuilder().setNamespace(p.namespace()).build());
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (node != null) {
        node.close();
      }
      if (pins != null && cgroup != null && java.nio.file.Files.exists(pins)) {
        // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
        InterceptionPrograms.install(cgroup.path(), pins).uninstall();
      }
    } finally {
      try {
        if (bpffs != null) {
          bpffs.close();
        }
      } finally {
        if (cgroup != null) {
          cgroup.close();
        }
      }
    }
  }

  @Test
  void aConsumerRouteShapesOnlyItsOwnNamespacesCalls() throws Exception {
    // team-b's calls to team-a's api go where team-b's consumer route says, without the producer
    // route's tag (the consumer group replaces the producer's for team-b).
    String b = curl("client-b", "-s", "-i", "http://" + API_VIP + "/hello");
    assertTrue(b.startsWith("HTTP/1.1 200"), b);
    assertTrue(b.contains("pod=alt-1"), b);
    assertFalse(b.toLowerCase(java.util.Locale.ROOT).contains("x-route: producer"), b);

    // team-a (the owner) and team-c (a bystander) reach the original backend by the producer route.
    for (String caller : List.of("client-a", "client-c")) {
      String out = curl(caller, "-s", "-i", "http://" + API_VIP + "/hello");
      assertTrue(out.startsWith("HTTP/1.1 200"), caller + ": " + out);
      assertTrue(out.contains("pod=api-1"), caller + ": " + out);
      assertTrue(
          out.toLowerCase(java.util.Locale.ROOT).contains("x-route: producer"),
          caller + ": " + out);
    }
    assertEquals(0, shadow.requests());
  }

  @Test
  void aHostileConsumerRoutesFaultAndMirrorHitOnlyItsOwnNamespace() throws Exception {
    // Bystanders first: neither the fault nor the mirror touches them.
    int apiBefore = api.requests();
    for (String caller : List.of("client-a", "client-c")) {
      assertEquals("200 api-1", codeAndPod(caller, "/fault/x"), caller);
      assertEquals("200 api-1", codeAndPod(caller, "/mirror/x"), caller);
    }
    assertEquals(apiBefore + 4, api.requests());

    // team-b gets what its own route asks for.
    assertEquals("418", codeAndPod("client-b", "/fault/x"));
    assertEquals("200 alt-1", codeAndPod("client-b", "/mirror/1"));
    assertEquals("200 alt-1", codeAndPod("client-b", "/mirror/2"));
    // Mirrors are sent after the response, off its path: wait for team-b's two, then make sure
    // no bystander's came along (theirs, had there been any, were sent before team-b's requests).
    Await.waitFor(() -> shadow.requests() >= 2, () -> "shadow saw " + shadow.requests());
    assertEquals(2, shadow.requests());
    assertEquals(apiBefore + 4, api.requests(), "team-b's calls never reached api");
  }

  /** "code pod" of one request from {@code caller} to api, or just the code without a body. */
  private String codeAndPod(String caller, String path) throws IOException {
    String out = curl(caller, "-s", "-w", "\ncode=%{http_code}", "http://" + API_VIP + path);
    String code = out.substring(out.lastIndexOf("code=") + 5).trim();
    for (String line : out.split("\n")) {
      if (line.startsWith("pod=")) {
        return code + " " + line.substring(4);
      }
    }
    return code;
  }

  /** curl in {@code pod} (in eBPF mode from inside the test cgroup, where the hooks see it). */
  private String curl(String pod, String... args) throws IOException {
    List<String> cmd = new ArrayList<>(List.of("--max-time", "10"));
    cmd.addAll(List.of(args));
    if (mode == Kind.IPTABLES) {
      return node.curl(pod, cmd.toArray(String[]::new));
    }
    cmd.add(0, "curl");
    List<String> full =
        new ArrayList<>(
            List.of(
                "sh",
                "-c",
                cgroup.joinCommand() + "ip netns exec " + node.pod(pod).name() + " \"$@\"",
                "sh"));
    full.addAll(cmd);
    Process p = new ProcessBuilder(full).redirectError(ProcessBuilder.Redirect.DISCARD).start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (!p.waitFor(20, TimeUnit.SECONDS)) {
        throw new IOException("timed out: " + full);
      }
      return out;
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException(e);
    } finally {
      p.destroyForcibly();
    }
  }

  private static String pod(Pod p) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: %s
          uid: uid-%s
          labels: {app: %s}
        spec:
          nodeName: test-node
          containers:
            - name: app
              ports: [{name: http, containerPort: 8080}]
        status:
          podIP: %s
        ---
        """
        .formatted(p.name(), p.namespace(), p.name(), p.app(), TestNode.SUBNET + p.host());
  }

  private static String service(String namespace, String name, String vip) {
    return """
        apiVersion: v1
        kind: Service
        metadata: {name: %s, namespace: %s}
        spec:
          clusterIP: %s
          selector: {app: %s}
          ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
        ---
        """
        .formatted(name, namespace, vip, name);
  }

  private static final String ROUTES =
      """
      # team-a's producer route: every caller without a consumer route of its own.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: api, namespace: team-a}
      spec:
        parentRefs: [{group: "", kind: Service, name: api, port: 80}]
        rules:
          - filters:
              - type: ResponseHeaderModifier
                responseHeaderModifier: {add: [{name: x-route, value: producer}]}
            backendRefs: [{name: api, port: 80}]
      ---
      # team-b's consumer route on team-a's api: its own backend, a fault and a mirror.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: take-over, namespace: team-b}
      spec:
        parentRefs: [{group: "", kind: Service, name: api, namespace: team-a, port: 80}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /fault}}]
            filters:
              - type: ExtensionRef
                extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: teapot}
            backendRefs: [{name: alt, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /mirror}}]
            filters:
              - type: RequestMirror
                requestMirror: {backendRef: {name: shadow, port: 80}}
            backendRefs: [{name: alt, port: 80}]
          - backendRefs: [{name: alt, port: 80}]
      ---
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: HTTPFault
      metadata: {name: teapot, namespace: team-b}
      spec:
        abort: {httpStatus: 418, percentage: 100}
      """;
}
