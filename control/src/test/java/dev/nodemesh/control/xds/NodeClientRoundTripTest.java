package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static dev.nodemesh.control.Fixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.AuthorizationPolicy;
import dev.nodemesh.api.config.v1.PeerAuthentication;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.kind.AuthorizationPolicyKind;
import dev.nodemesh.model.kind.HttpFaultKind;
import dev.nodemesh.model.kind.HttpRouteKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.xds.Backoff;
import dev.nodemesh.proxy.xds.XdsClient;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node proxy's xDS client against the real control plane on loopback: what ends up in the
 * proxy's snapshot, what a bad resource does, and what happens when the control plane goes away.
 */
class NodeClientRoundTripTest {
  private static final Duration WAIT = Duration.ofSeconds(10);
  private final TestSource source = new TestSource();
  private final SnapshotHolder snapshots = new SnapshotHolder();
  private final List<String> rejections = new CopyOnWriteArrayList<>();
  private final ScheduledExecutorService clientExecutor =
      Executors.newSingleThreadScheduledExecutor();
  private ControlPlane cp;
  private ManagedChannel channel;
  private XdsClient client;

  private ControlPlane startControlPlane(int port) throws Exception {
    return ControlPlane.start(
        source, new InetSocketAddress("127.0.0.1", port), null, Duration.ofMillis(20));
  }

  private void startClient() {
    channel =
        Grpc.newChannelBuilder(
                "127.0.0.1:" + cp.address().getPort(), InsecureChannelCredentials.create())
            .build();
    client =
        new XdsClient(
            channel,
            "n1",
            snapshots,
            clientExecutor,
            new Backoff(
                TimeUnit.MILLISECONDS.toNanos(20), TimeUnit.MILLISECONDS.toNanos(100), () -> 0.5),
            new XdsClient.Listener() {
              @Override
              public void rejected(String reasons) {
                rejections.add(reasons);
              }
            });
    client.start();
  }

  @AfterEach
  void stop() throws Exception {
    if (client != null) {
      client.close();
    }
    clientExecutor.shutdown();
    clientExecutor.awaitTermination(5, TimeUnit.SECONDS);
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (cp != null) {
      cp.close();
    }
  }

  private void seed() throws Exception {
    source.apply(
        s -> {
          s.put(
              ResourceType.SERVICE, key("web"), service("web", "10.96.0.1", Map.of("app", "web")));
          s.put(
              ResourceType.WORKLOAD,
              key("web-1"),
              pod("web-1", "n2", "10.0.2.1", Map.of("app", "web")));
          s.put(ResourceType.WORKLOAD, key("client"), pod("client", "n1", "10.0.1.1", Map.of()));
        });
  }

  private static InetAddress ip(String literal) throws Exception {
    return InetAddress.getByAddress(InetAddress.getByName(literal).getAddress());
  }

  @Test
  void snapshotFollowsTheControlPlaneAndABadResourceIsNackedWithoutHalfApplying() throws Exception {
    cp = startControlPlane(0);
    seed();
    startClient();
    Await.until(
        WAIT,
        "initial sync",
        () ->
            snapshots.current().workloads().size() == 2
                && snapshots.current().services().size() == 1);
    ConfigSnapshot first = snapshots.current();
    MeshService web = first.serviceByVip(ip("10.96.0.1"));
    assertNotNull(web);
    assertEquals(List.of("web-1"), first.endpoints(web).stream().map(w -> w.name()).toList());

    // One new endpoint: the proxy sees it.
    source.apply(
        s ->
            s.put(
                ResourceType.WORKLOAD,
                key("web-2"),
                pod("web-2", "n3", "10.0.3.1", Map.of("app", "web"))));
    Await.until(WAIT, "new endpoint", () -> snapshots.current().workloads().size() == 3);
    long good = client.version();

    // A good change and a bad one in the same push: neither is applied, the NACK names the bad.
    source.apply(
        s -> {
          s.put(
              ResourceType.WORKLOAD,
              key("web-3"),
              pod("web-3", "n3", "10.0.3.2", Map.of("app", "web")));
          s.put(
              ResourceType.WORKLOAD,
              key("broken"),
              pod("broken", "n3", "not-an-ip", Map.of("app", "web")));
        });
    Await.until(WAIT, "the NACK", () -> cp.ads().lastNack("n1") != null);
    String reason = cp.ads().lastNack("n1");
    assertTrue(reason.contains("Workload default/broken: ips[0]"), reason);
    assertTrue(reason.contains("not an IP address"), reason);
    // The client sends the NACK before telling its listener: the server may know first.
    Await.until(WAIT, "the listener", () -> !rejections.isEmpty());
    assertEquals(List.of(reason), rejections);
    assertEquals(good, client.version());
    assertEquals(3, snapshots.current().workloads().size(), "nothing of the bad update applied");

    // Fixing the bad resource brings the whole update in.
    source.apply(
        s ->
            s.put(
                ResourceType.WORKLOAD,
                key("broken"),
                pod("broken", "n3", "10.0.3.3", Map.of("app", "web"))));
    Await.until(WAIT, "the fixed update", () -> snapshots.current().workloads().size() == 5);
    assertEquals(good + 1, client.version());
  }

  @Test
  void policiesReachTheProxyAndAMalformedOneIsNacked() throws Exception {
    cp = startControlPlane(0);
    seed();
    startClient();
    Await.until(WAIT, "initial sync", () -> snapshots.current().workloads().size() == 2);
    AuthorizationPolicy allow =
        AuthorizationPolicy.newBuilder()
            .setName("allow-frontend")
            .setNamespace("default")
            .setAction(AuthorizationPolicy.Action.ALLOW)
            .setSelector(Selector.newBuilder().putMatchLabels("app", "web"))
            .addRules(
                AuthorizationPolicy.Rule.newBuilder()
                    .addFrom(
                        AuthorizationPolicy.Source.newBuilder()
                            .addPrincipals("spiffe://cluster.local/ns/default/sa/*")
                            .addIpBlocks("10.0.0.0/8"))
                    .addTo(AuthorizationPolicy.Operation.newBuilder().addPorts(8080)))
            .build();
    source.apply(
        s -> {
          s.put(ResourceType.AUTHORIZATION_POLICY, key("allow-frontend"), allow);
          s.put(
              ResourceType.PEER_AUTHENTICATION,
              "nodemesh-system/mesh",
              PeerAuthentication.newBuilder()
                  .setName("mesh")
                  .setNamespace("nodemesh-system")
                  .setMode(PeerAuthentication.Mode.STRICT)
                  .build());
        });
    Await.until(
        WAIT,
        "policies",
        () ->
            snapshots.current().authorizationPolicies().size() == 1
                && snapshots.current().peerAuthentications().size() == 1);
    var policy = snapshots.current().authorizationPolicies("default").get(0);
    assertEquals(Map.of("app", "web"), policy.selector());
    assertEquals(
        List.of("10.0.0.0/8"),
        policy.rules().get(0).from().get(0).ipBlocks().stream().map(Object::toString).toList());
    assertEquals(List.of(8080), policy.rules().get(0).to().get(0).ports());
    long good = client.version();

    source.apply(
        s ->
            s.put(
                ResourceType.AUTHORIZATION_POLICY,
                key("allow-frontend"),
                allow.toBuilder()
                    .setAction(AuthorizationPolicy.Action.ACTION_UNSPECIFIED)
                    .setRules(
                        0,
                        allow.getRules(0).toBuilder()
                            .setFrom(
                                0,
                                allow.getRules(0).getFrom(0).toBuilder().setIpBlocks(0, "10.0/8")))
                    .build()));
    Await.until(WAIT, "the NACK", () -> cp.ads().lastNack("n1") != null);
    String reason = cp.ads().lastNack("n1");
    assertTrue(reason.contains("AuthorizationPolicy default/allow-frontend: action"), reason);
    assertTrue(
        reason.contains("rules[0].from[0].ip_blocks[0]: \"10.0/8\" is not an IP or CIDR"), reason);
    assertEquals(good, client.version());
    assertEquals(policy, snapshots.current().authorizationPolicies("default").get(0));
  }

  @Test
  void anHttpRouteArrivesInTheProxySnapshotExactlyAsTheYamlSaid(@TempDir Path dir)
      throws Exception {
    Path file =
        Files.writeString(
            dir.resolve("route.yaml"),
            """
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: web, namespace: default, annotations: {nodemesh.dev/retry-non-idempotent: "true"}}
            spec:
              parentRefs: [{group: "", kind: Service, name: web, port: 80}]
              rules:
                - matches:
                    - path: {type: RegularExpression, value: "/v[0-9]+/.*"}
                      headers: [{name: x-env, value: prod}]
                      queryParams: [{name: q, value: "1"}]
                      method: GET
                    - path: {type: Exact, value: /exact}
                  filters:
                    - type: RequestHeaderModifier
                      requestHeaderModifier: {set: [{name: a, value: "1"}], remove: [b]}
                    - type: ResponseHeaderModifier
                      responseHeaderModifier: {add: [{name: c, value: "3"}]}
                    - type: URLRewrite
                      urlRewrite: {hostname: h, path: {type: ReplaceFullPath, replaceFullPath: /x}}
                  backendRefs: [{name: web, port: 80, weight: 7}, {name: other, namespace: ns2, port: 81}]
                  timeouts: {request: 2s, backendRequest: 500ms}
                  retry: {codes: [503, 502], attempts: 2, backoff: 5ms}
                - backendRefs: [{name: web, port: 80}]
            """);
    // As the sources push it: ns2/other is marked, no ReferenceGrant permits it, and the mark
    // travels.
    List<HttpRoute> routes =
        dev.nodemesh.model.config.ReferenceGrant.applyAll(
            ConfigLoader.loadFile(file).of(ResourceKinds.HTTP_ROUTE), List.of());
    assertEquals(1, routes.size());
    assertFalse(routes.get(0).rules().get(0).backends().get(1).permitted());
    cp = startControlPlane(0);
    seed();
    source.apply(
        s -> s.put(ResourceType.HTTP_ROUTE, "default/web", HttpRouteKind.encode(routes.get(0))));
    startClient();
    Await.until(WAIT, "the route", () -> snapshots.current().httpRoutes().size() == 1);
    assertEquals(routes, snapshots.current().httpRoutes());
    assertTrue(snapshots.current().hasHttpRoute(new NamespacedName("default", "web"), 80));

    source.apply(s -> s.remove(ResourceType.HTTP_ROUTE, "default/web"));
    Await.until(WAIT, "the removal", () -> snapshots.current().httpRoutes().isEmpty());
  }

  @Test
  void aGrpcRouteWithFaultAndMirrorAndAnL7PolicyArriveAsTheYamlSaid(@TempDir Path dir)
      throws Exception {
    Path file =
        Files.writeString(
            dir.resolve("grpc.yaml"),
            """
            apiVersion: gateway.networking.k8s.io/v1
            kind: GRPCRoute
            metadata: {name: echo, namespace: default}
            spec:
              parentRefs: [{group: "", kind: Service, name: echo, port: 9090}]
              rules:
                - matches:
                    - method: {service: pkg.Echo, method: Say}
                      headers: [{name: x-canary, value: "yes"}]
                  filters:
                    - type: ExtensionRef
                      extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: f}
                    - type: RequestMirror
                      requestMirror: {backendRef: {name: shadow, port: 9090}, percent: 10}
                  backendRefs: [{name: echo, port: 9090}]
            ---
            apiVersion: security.nodemesh.dev/v1alpha1
            kind: AuthorizationPolicy
            metadata: {name: l7, namespace: default}
            spec:
              rules:
                - to: [{methods: [GET], notPaths: ["/admin*"], headers: {x-role: "ops*"}}]
            ---
            apiVersion: traffic.nodemesh.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: f, namespace: default}
            spec:
              delay: {fixedDelay: 150ms250us, percentage: 0.0125}
              abort: {grpcStatus: UNAVAILABLE, percentage: 30}
            ---
            apiVersion: traffic.nodemesh.dev/v1alpha1
            kind: HTTPFault
            metadata: {name: g, namespace: default}
            spec:
              abort: {httpStatus: 503}
            ---
            apiVersion: gateway.networking.k8s.io/v1
            kind: HTTPRoute
            metadata: {name: echo, namespace: default}
            spec:
              parentRefs: [{group: "", kind: Service, name: echo, port: 8080}]
              rules: [{backendRefs: [{name: echo, port: 8080}]}]
            """);
    var content = ConfigLoader.loadFile(file);
    List<HttpRoute> routes = content.of(ResourceKinds.HTTP_ROUTE);
    var policy = content.of(ResourceKinds.AUTHORIZATION_POLICY).get(0);
    var faults = content.of(ResourceKinds.HTTP_FAULT);
    assertEquals(2, faults.size());
    cp = startControlPlane(0);
    seed();
    source.apply(
        s -> {
          // A GRPCRoute and an HTTPRoute of the same name: distinct resources, both arrive.
          for (HttpRoute r : routes) {
            s.put(ResourceType.HTTP_ROUTE, HttpRouteKind.resourceName(r), HttpRouteKind.encode(r));
          }
          s.put(
              ResourceType.AUTHORIZATION_POLICY,
              "default/l7",
              AuthorizationPolicyKind.encode(policy));
          for (var f : faults) {
            s.put(
                ResourceType.HTTP_FAULT,
                ResourceKinds.resourceName(f.namespace(), f.name()),
                HttpFaultKind.encode(f));
          }
        });
    startClient();
    Await.until(
        WAIT,
        "the routes, policy and faults",
        () ->
            snapshots.current().httpRoutes().size() == 2
                && snapshots.current().authorizationPolicies().size() == 1
                && snapshots.current().httpFaults().size() == 2);
    assertEquals(
        List.of("GRPCRoute default/echo", "HTTPRoute default/echo"),
        snapshots.current().httpRoutes().stream()
            .map(r -> r.kind() + " " + r.id())
            .sorted()
            .toList());
    assertEquals(
        routes.stream().filter(HttpRoute::grpc).toList(),
        snapshots.current().httpRoutes().stream().filter(HttpRoute::grpc).toList());
    assertEquals(policy, snapshots.current().authorizationPolicies("default").get(0));
    assertEquals(faults, snapshots.current().httpFaults());
    var f = snapshots.current().httpFault(new NamespacedName("default", "f"));
    assertEquals(faults.get(0), f);
    assertEquals(125, f.delay().perMillion());
    // Sub-millisecond precision survives the encoder, the wire and the decoder.
    assertEquals(Duration.ofNanos(150_250_000), f.delay().fixed());
    assertEquals(14, f.abort().grpcStatus());
    long good = client.version();

    // A fault the proxy cannot apply is NACKed, naming the field; nothing of it is applied.
    source.apply(
        s ->
            s.put(
                ResourceType.HTTP_FAULT,
                "default/f",
                HttpFaultKind.encode(faults.get(0)).toBuilder()
                    .setAbort(
                        HttpFaultKind.encode(faults.get(0)).getAbort().toBuilder()
                            .setGrpcStatus(17))
                    .build()));
    Await.until(WAIT, "the NACK", () -> cp.ads().lastNack("n1") != null);
    String reason = cp.ads().lastNack("n1");
    assertTrue(
        reason.contains("HttpFault default/f: abort.grpc_status: 17 is not in 1-16"), reason);
    assertEquals(good, client.version());
    assertEquals(faults, snapshots.current().httpFaults());

    // Removing a fault reaches the proxy (a rule naming it then answers 500 again).
    source.apply(s -> s.remove(ResourceType.HTTP_FAULT, "default/f"));
    Await.until(
        WAIT,
        "the removal",
        () -> snapshots.current().httpFault(new NamespacedName("default", "f")) == null);
    assertEquals(List.of(faults.get(1)), snapshots.current().httpFaults());
  }

  @Test
  void keepsServingWhileTheControlPlaneIsAwayAndCatchesUpAfter() throws Exception {
    cp = startControlPlane(0);
    int port = cp.address().getPort();
    seed();
    startClient();
    Await.until(
        WAIT,
        "initial sync",
        () ->
            snapshots.current().workloads().size() == 2
                && snapshots.current().services().size() == 1);
    assertTrue(client.connected(), "the control plane answered on a live stream");
    ConfigSnapshot before = snapshots.current();

    cp.close();
    cp = null;
    Await.until(WAIT, "the client to notice", () -> !client.connected());
    Thread.sleep(200); // a few reconnect attempts fail meanwhile
    assertEquals(before, snapshots.current(), "the last accepted snapshot keeps serving");

    // The same content on a new control plane: the client sends its versions, and nothing moves.
    cp = startControlPlane(port);
    seed();
    Await.until(WAIT, "reconnect", () -> cp.ads().connectedNodes().contains("n1"));
    Thread.sleep(200);
    assertEquals(0.0, cp.ads().metrics().resourcesSent(ResourceType.WORKLOAD));
    assertEquals(before, snapshots.current());

    source.apply(
        s ->
            s.put(
                ResourceType.WORKLOAD,
                key("web-2"),
                pod("web-2", "n3", "10.0.3.1", Map.of("app", "web"))));
    Await.until(WAIT, "catch-up", () -> snapshots.current().workloads().size() == 3);
    assertEquals(1.0, cp.ads().metrics().resourcesSent(ResourceType.WORKLOAD));
  }
}
