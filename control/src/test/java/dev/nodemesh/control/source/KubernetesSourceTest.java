package dev.nodemesh.control.source;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.HttpRoute;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.VersionedResource;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.NamespaceBuilder;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.NodeBuilder;
import io.fabric8.kubernetes.api.model.ObjectMetaBuilder;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSliceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.function.Predicate;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes source against fabric8's mock API server in CRUD mode (real lists and watches), a
 * fresh one per test ({@link MockApiServer} says why).
 */
class KubernetesSourceTest {
  static KubernetesClient client;

  private final ExecutorService executor = Executors.newSingleThreadExecutor();
  private final ResourceStore store = new ResourceStore(System::nanoTime, () -> {});
  private @Nullable MockApiServer api;
  private KubernetesSource source;

  @BeforeEach
  void startServer() {
    api = MockApiServer.start();
    client = api.client();
  }

  private static final ResourceDefinitionContext POLICIES =
      new ResourceDefinitionContext.Builder()
          .withGroup("security.nodemesh.dev")
          .withVersion("v1alpha1")
          .withKind("AuthorizationPolicy")
          .withPlural("authorizationpolicies")
          .withNamespaced(true)
          .build();
  private static final ResourceDefinitionContext PEER_AUTHNS =
      new ResourceDefinitionContext.Builder()
          .withGroup("security.nodemesh.dev")
          .withVersion("v1alpha1")
          .withKind("PeerAuthentication")
          .withPlural("peerauthentications")
          .withNamespaced(true)
          .build();

  private static GenericKubernetesResource custom(String kind, String name, Object spec) {
    GenericKubernetesResource r = new GenericKubernetesResource();
    r.setApiVersion("security.nodemesh.dev/v1alpha1");
    r.setKind(kind);
    r.setMetadata(new ObjectMetaBuilder().withName(name).withNamespace("default").build());
    r.setAdditionalProperty("spec", spec);
    return r;
  }

  @Test
  void policiesFromTheCrdsBecomeResourcesAndAnInvalidOneKeepsTheLastGood() throws Exception {
    startSource(60_000);
    client
        .genericKubernetesResources(POLICIES)
        .inNamespace("default")
        .resource(
            custom(
                "AuthorizationPolicy",
                "deny-other",
                Map.of(
                    "action",
                    "DENY",
                    "rules",
                    List.of(Map.of("from", List.of(Map.of("namespaces", List.of("other"))))))))
        .create();
    client
        .genericKubernetesResources(PEER_AUTHNS)
        .inNamespace("default")
        .resource(custom("PeerAuthentication", "strict", Map.of("mtls", Map.of("mode", "STRICT"))))
        .create();
    await(
        "policies",
        t ->
            test(
                () ->
                    onStore(s -> s.get(ResourceType.AUTHORIZATION_POLICY, "default/deny-other"))
                            != null
                        && onStore(s -> s.get(ResourceType.PEER_AUTHENTICATION, "default/strict"))
                            != null));
    var policy =
        (dev.nodemesh.api.config.v1.AuthorizationPolicy)
            onStore(s -> s.get(ResourceType.AUTHORIZATION_POLICY, "default/deny-other")).message();
    assertEquals(dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.DENY, policy.getAction());
    assertEquals(List.of("other"), policy.getRules(0).getFrom(0).getNamespacesList());

    // A value the schema cannot rule out (a bad pattern) is refused; the last good one stays.
    client
        .genericKubernetesResources(POLICIES)
        .inNamespace("default")
        .resource(
            custom(
                "AuthorizationPolicy",
                "deny-other",
                Map.of(
                    "action",
                    "DENY",
                    "rules",
                    List.of(Map.of("from", List.of(Map.of("namespaces", List.of("o*t*"))))))))
        .update();
    client
        .genericKubernetesResources(POLICIES)
        .inNamespace("default")
        .resource(custom("AuthorizationPolicy", "marker", Map.of()))
        .create();
    await(
        "the later marker",
        t ->
            test(
                () ->
                    onStore(s -> s.get(ResourceType.AUTHORIZATION_POLICY, "default/marker"))
                        != null));
    assertEquals(
        policy,
        onStore(s -> s.get(ResourceType.AUTHORIZATION_POLICY, "default/deny-other")).message());

    client
        .genericKubernetesResources(PEER_AUTHNS)
        .inNamespace("default")
        .withName("strict")
        .delete();
    await(
        "deletion",
        t ->
            test(
                () ->
                    onStore(s -> s.get(ResourceType.PEER_AUTHENTICATION, "default/strict"))
                        == null));
  }

  @AfterEach
  void stop() throws Exception {
    if (source != null) {
      source.close();
    }
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
    if (api != null) {
      api.close();
    }
  }

  private <T> T onStore(Function<ResourceStore, T> read) throws Exception {
    CompletableFuture<T> f = new CompletableFuture<>();
    executor.execute(() -> f.complete(read.apply(store)));
    return f.get(5, TimeUnit.SECONDS);
  }

  private @Nullable Workload workload(String name) throws Exception {
    VersionedResource r = onStore(s -> s.get(ResourceType.WORKLOAD, "default/" + name));
    return r == null ? null : (Workload) r.message();
  }

  private void await(String what, Predicate<KubernetesSourceTest> ok) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (true) {
      if (ok.test(this)) {
        return;
      }
      assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
      Thread.sleep(20);
    }
  }

  private boolean test(Callable c) {
    try {
      return c.call();
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }

  private interface Callable {
    boolean call() throws Exception;
  }

  private static Pod pod(String name, String ip, boolean ready, Map<String, String> labels) {
    return MockApiServer.pod(name, ip, ready, labels, "node-1");
  }

  private static Node node(String name, Map<String, String> labels) {
    return new NodeBuilder()
        .withNewMetadata()
        .withName(name)
        .withLabels(labels)
        .endMetadata()
        .build();
  }

  @Test
  void workloadsTakeTheZoneOfTheirNodeAndFollowItsLabel() throws Exception {
    client
        .nodes()
        .resource(node("node-a", Map.of("topology.kubernetes.io/zone", "zone-a")))
        .create();
    client
        .nodes()
        .resource(node("node-b", Map.of("failure-domain.beta.kubernetes.io/zone", "zone-b")))
        .create();
    client.nodes().resource(node("node-c", Map.of())).create();
    // The pod label names another zone: the node's wins where the node has one.
    var podLabel = Map.of("app", "echo", "topology.kubernetes.io/zone", "from-pod");
    client
        .pods()
        .inNamespace("default")
        .resource(MockApiServer.pod("on-a", "10.1.1.1", true, podLabel, "node-a"))
        .create();
    client
        .pods()
        .inNamespace("default")
        .resource(MockApiServer.pod("on-b", "10.1.1.2", true, Map.of(), "node-b"))
        .create();
    client
        .pods()
        .inNamespace("default")
        .resource(MockApiServer.pod("on-c", "10.1.1.3", true, podLabel, "node-c"))
        .create();
    client
        .pods()
        .inNamespace("default")
        .resource(MockApiServer.pod("on-c2", "10.1.1.4", true, Map.of(), "node-c"))
        .create();
    startSource(0);
    assertEquals("zone-a", workload("on-a").getZone());
    assertEquals("zone-b", workload("on-b").getZone()); // the legacy label as a fallback
    assertEquals("from-pod", workload("on-c").getZone()); // the node says nothing
    assertEquals("", workload("on-c2").getZone());

    // A node's zone label changing re-derives its pods, and only those.
    Workload onA = workload("on-a");
    client
        .nodes()
        .withName("node-b")
        .edit(
            n -> {
              n.getMetadata().getLabels().put("topology.kubernetes.io/zone", "zone-b2");
              return n;
            });
    await("node-b's new zone", t -> test(() -> "zone-b2".equals(workload("on-b").getZone())));
    client
        .nodes()
        .withName("node-c")
        .edit(
            n -> {
              n.getMetadata().setLabels(Map.of("topology.kubernetes.io/zone", "zone-c"));
              return n;
            });
    await(
        "node-c's new zone",
        t ->
            test(
                () ->
                    "zone-c".equals(workload("on-c").getZone())
                        && "zone-c".equals(workload("on-c2").getZone())));
    assertEquals(onA, workload("on-a"));
  }

  private void startSource(long resyncMillis) throws Exception {
    source = new KubernetesSource(client, resyncMillis);
    source.start(store, executor);
    await("initial sync", t -> source.ready());
  }

  @Test
  void httpRoutesAttachedToServicesAreWatchedAsGenericResources() throws Exception {
    startSource(0);
    GenericKubernetesResource route =
        client
            .getKubernetesSerialization()
            .unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: web, namespace: default}
                spec:
                  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
                  rules:
                    - matches: [{path: {type: PathPrefix, value: /v2}}]
                      backendRefs: [{name: web-v2, port: 80}]
                """,
                GenericKubernetesResource.class);
    var routes = client.genericKubernetesResources("gateway.networking.k8s.io/v1", "HTTPRoute");
    routes.inNamespace("default").resource(route).create();
    await(
        "the route",
        t -> test(() -> onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/web")) != null));
    HttpRoute r = (HttpRoute) onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/web")).message();
    assertEquals("web", r.getParents(0).getService());
    assertEquals("/v2", r.getRules(0).getMatches(0).getPath().getValue());
    assertEquals("web-v2", r.getRules(0).getBackends(0).getService());

    routes.inNamespace("default").withName("web").delete();
    await(
        "the removal",
        t -> test(() -> onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/web")) == null));
  }

  @Test
  void aReferenceGrantChangeRederivesTheRoutesItPermits() throws Exception {
    startSource(0);
    var ser = client.getKubernetesSerialization();
    var httpRoutes = client.genericKubernetesResources("gateway.networking.k8s.io/v1", "HTTPRoute");
    var grants =
        client.genericKubernetesResources(
            new ResourceDefinitionContext.Builder()
                .withGroup("gateway.networking.k8s.io")
                .withVersion("v1beta1")
                .withKind("ReferenceGrant")
                .withPlural("referencegrants")
                .withNamespaced(true)
                .build());
    httpRoutes
        .inNamespace("front")
        .resource(
            ser.unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: far, namespace: front}
                spec:
                  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
                  rules: [{backendRefs: [{name: web, port: 80}, {name: db, namespace: back, port: 80}]}]
                """,
                GenericKubernetesResource.class))
        .create();
    await(
        "the route, db refused",
        t -> test(() -> notPermitted(onStore(s -> s.get(ResourceType.HTTP_ROUTE, "front/far")))));
    HttpRoute refused =
        (HttpRoute) onStore(s -> s.get(ResourceType.HTTP_ROUTE, "front/far")).message();
    assertFalse(refused.getRules(0).getBackends(0).getNotPermitted()); // same namespace
    grants
        .inNamespace("back")
        .resource(
            ser.unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1beta1
                kind: ReferenceGrant
                metadata: {name: from-front, namespace: back}
                spec:
                  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: front}]
                  to: [{group: "", kind: Service}]
                """,
                GenericKubernetesResource.class))
        .create();
    await(
        "db permitted",
        t -> test(() -> !notPermitted(onStore(s -> s.get(ResourceType.HTTP_ROUTE, "front/far")))));
    grants.inNamespace("back").withName("from-front").delete();
    await(
        "db refused again",
        t -> test(() -> notPermitted(onStore(s -> s.get(ResourceType.HTTP_ROUTE, "front/far")))));
    httpRoutes.inNamespace("front").withName("far").delete();
    await(
        "the removal",
        t -> test(() -> onStore(s -> s.get(ResourceType.HTTP_ROUTE, "front/far")) == null));
  }

  private static boolean notPermitted(@org.jspecify.annotations.Nullable VersionedResource r) {
    return r != null && ((HttpRoute) r.message()).getRules(0).getBackends(1).getNotPermitted();
  }

  @Test
  void grpcRoutesAndHttpFaultsAreWatchedAndARouteOfEachKindMayShareAName() throws Exception {
    startSource(0);
    var ser = client.getKubernetesSerialization();
    var httpRoutes = client.genericKubernetesResources("gateway.networking.k8s.io/v1", "HTTPRoute");
    var grpcRoutes =
        client.genericKubernetesResources(
            new ResourceDefinitionContext.Builder()
                .withGroup("gateway.networking.k8s.io")
                .withVersion("v1")
                .withKind("GRPCRoute")
                .withPlural("grpcroutes")
                .withNamespaced(true)
                .build());
    var faults =
        client.genericKubernetesResources(
            new ResourceDefinitionContext.Builder()
                .withGroup("traffic.nodemesh.dev")
                .withVersion("v1alpha1")
                .withKind("HTTPFault")
                .withPlural("httpfaults")
                .withNamespaced(true)
                .build());
    httpRoutes
        .inNamespace("default")
        .resource(
            ser.unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1
                kind: HTTPRoute
                metadata: {name: echo, namespace: default}
                spec:
                  parentRefs: [{group: "", kind: Service, name: web, port: 80}]
                  rules: [{backendRefs: [{name: web-v2, port: 80}]}]
                """,
                GenericKubernetesResource.class))
        .create();
    grpcRoutes
        .inNamespace("default")
        .resource(
            ser.unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1
                kind: GRPCRoute
                metadata: {name: echo, namespace: default}
                spec:
                  parentRefs: [{group: "", kind: Service, name: echo, port: 9090}]
                  rules:
                    - matches: [{method: {service: pkg.Echo, method: Say}}]
                      filters:
                        - type: ExtensionRef
                          extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: slow}
                      backendRefs: [{name: echo-v2, port: 9090}]
                """,
                GenericKubernetesResource.class))
        .create();
    faults
        .inNamespace("default")
        .resource(
            ser.unmarshal(
                """
                apiVersion: traffic.nodemesh.dev/v1alpha1
                kind: HTTPFault
                metadata: {name: slow, namespace: default}
                spec:
                  delay: {fixedDelay: 250ms, percentage: 12.5}
                  abort: {grpcStatus: UNAVAILABLE}
                """,
                GenericKubernetesResource.class))
        .create();
    await(
        "both routes and the fault",
        t ->
            test(
                () ->
                    onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/echo")) != null
                        && onStore(s -> s.get(ResourceType.HTTP_ROUTE, "GRPCRoute/default/echo"))
                            != null
                        && onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/slow")) != null));
    HttpRoute http =
        (HttpRoute) onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/echo")).message();
    assertFalse(http.getGrpc());
    assertEquals("web", http.getParents(0).getService());
    HttpRoute grpc =
        (HttpRoute)
            onStore(s -> s.get(ResourceType.HTTP_ROUTE, "GRPCRoute/default/echo")).message();
    assertTrue(grpc.getGrpc());
    assertEquals("echo", grpc.getName());
    assertEquals("/pkg.Echo/Say", grpc.getRules(0).getMatches(0).getPath().getValue());
    assertEquals("slow", grpc.getRules(0).getFault());
    var fault =
        (dev.nodemesh.api.config.v1.HttpFault)
            onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/slow")).message();
    assertEquals(250, fault.getDelay().getFixedDelayMs());
    assertEquals(125_000, fault.getDelay().getPerMillion());
    assertEquals(14, fault.getAbort().getGrpcStatus());
    assertEquals(1_000_000, fault.getAbort().getPerMillion());

    // A fault the schema cannot rule out (neither delay nor abort) is refused; the last good stays.
    faults
        .inNamespace("default")
        .resource(
            ser.unmarshal(
                """
                apiVersion: traffic.nodemesh.dev/v1alpha1
                kind: HTTPFault
                metadata: {name: slow, namespace: default}
                spec: {}
                """,
                GenericKubernetesResource.class))
        .update();
    // Then a valid change to another object, to know the refused update has been handled.
    faults
        .inNamespace("default")
        .resource(
            ser.unmarshal(
                """
                apiVersion: traffic.nodemesh.dev/v1alpha1
                kind: HTTPFault
                metadata: {name: fail, namespace: default}
                spec: {abort: {httpStatus: 503, percentage: 50}}
                """,
                GenericKubernetesResource.class))
        .create();
    await(
        "the second fault",
        t -> test(() -> onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/fail")) != null));
    assertEquals(fault, onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/slow")).message());

    // Deleting the GRPCRoute leaves the HTTPRoute of the same name alone.
    grpcRoutes.inNamespace("default").withName("echo").delete();
    faults.inNamespace("default").delete();
    await(
        "the removals",
        t ->
            test(
                () ->
                    onStore(s -> s.get(ResourceType.HTTP_ROUTE, "GRPCRoute/default/echo")) == null
                        && onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/slow")) == null
                        && onStore(s -> s.get(ResourceType.HTTP_FAULT, "default/fail")) == null));
    assertEquals(http, onStore(s -> s.get(ResourceType.HTTP_ROUTE, "default/echo")).message());
    httpRoutes.inNamespace("default").withName("echo").delete();
  }

  @Test
  void podsAndServicesBecomeResourcesAndFollowCreateUpdateDelete() throws Exception {
    client
        .namespaces()
        .resource(
            new NamespaceBuilder().withNewMetadata().withName("default").endMetadata().build())
        .create();
    client
        .pods()
        .inNamespace("default")
        .resource(pod("echo-1", "10.1.0.1", true, Map.of("app", "echo")))
        .create();
    client
        .services()
        .inNamespace("default")
        .resource(
            new ServiceBuilder()
                .withNewMetadata()
                .withName("echo")
                .withNamespace("default")
                .endMetadata()
                .withNewSpec()
                .withClusterIP("10.96.0.10")
                .withSelector(Map.of("app", "echo"))
                .addNewPort()
                .withPort(80)
                .withNewTargetPort("http")
                .withAppProtocol("http")
                .endPort()
                .endSpec()
                .build())
        .create();
    startSource(0);
    // Listed before the source started: present at the moment it reports ready.
    Workload echo1 = workload("echo-1");
    assertEquals(List.of("10.1.0.1"), echo1.getIpsList());
    assertEquals("sa-echo-1", echo1.getServiceAccount());
    assertFalse(echo1.getUid().isEmpty()); // the API server assigns it
    assertTrue(echo1.getReady());
    Service svc = (Service) onStore(s -> s.get(ResourceType.SERVICE, "default/echo")).message();
    assertEquals(List.of("10.96.0.10"), svc.getVipsList());
    assertEquals("http", svc.getPorts(0).getAppProtocol());

    client
        .pods()
        .inNamespace("default")
        .resource(pod("echo-2", "10.1.0.2", false, Map.of("app", "echo")))
        .create();
    await("created pod", t -> test(() -> workload("echo-2") != null));
    assertFalse(workload("echo-2").getReady());

    client
        .pods()
        .inNamespace("default")
        .resource(pod("echo-2", "10.1.0.2", true, Map.of("app", "echo")))
        .update();
    await("readiness update", t -> test(() -> workload("echo-2").getReady()));

    client.pods().inNamespace("default").withName("echo-1").delete();
    await("deleted pod", t -> test(() -> workload("echo-1") == null));
  }

  @Test
  void aServiceWithoutSelectorTakesItsEndpointsFromEndpointSlices() throws Exception {
    client.pods().inNamespace("default").resource(pod("db-1", "10.1.0.5", true, Map.of())).create();
    client
        .services()
        .inNamespace("default")
        .resource(
            new ServiceBuilder()
                .withNewMetadata()
                .withName("db")
                .withNamespace("default")
                .endMetadata()
                .withNewSpec()
                .withClusterIP("10.96.0.20")
                .addNewPort()
                .withPort(5432)
                .endPort()
                .endSpec()
                .build())
        .create();
    startSource(0);
    client
        .discovery()
        .v1()
        .endpointSlices()
        .inNamespace("default")
        .resource(
            new EndpointSliceBuilder()
                .withNewMetadata()
                .withName("db-abc")
                .withNamespace("default")
                .withLabels(Map.of("kubernetes.io/service-name", "db"))
                .endMetadata()
                .withAddressType("IPv4")
                .addNewEndpoint()
                .withAddresses("10.1.0.5")
                .withNewTargetRef()
                .withKind("Pod")
                .withName("db-1")
                .withNamespace("default")
                .withUid("uid-db-1")
                .endTargetRef()
                .withNewConditions()
                .withReady(true)
                .endConditions()
                .endEndpoint()
                .build())
        .create();
    await(
        "endpoint list",
        t ->
            test(
                () -> {
                  VersionedResource r = onStore(s -> s.get(ResourceType.SERVICE, "default/db"));
                  return r != null
                      && ((Service) r.message())
                          .getEndpointList()
                          .getWorkloadUidsList()
                          .equals(List.of("uid-db-1"));
                }));
  }

  @Test
  void resyncsAndPendingPodsCauseNoChange() throws Exception {
    client
        .pods()
        .inNamespace("default")
        .resource(pod("echo-1", "10.1.0.1", true, Map.of()))
        .create();
    Pod pending =
        new PodBuilder(pod("pending", "10.1.0.9", false, Map.of()))
            .editStatus()
            .withPodIP(null)
            .withPodIPs()
            .withPhase("Pending")
            .endStatus()
            .build();
    client.pods().inNamespace("default").resource(pending).create();
    Pod host =
        new PodBuilder(pod("kube-proxy", "192.168.0.1", true, Map.of()))
            .editSpec()
            .withHostNetwork(true)
            .endSpec()
            .build();
    client.pods().inNamespace("default").resource(host).create();
    startSource(100);
    assertNull(workload("pending"), "a pod without an IP is not a workload yet");
    assertNull(workload("kube-proxy"), "a host-network pod has the node's IP: not meshed");
    long revision = onStore(ResourceStore::revision);
    Thread.sleep(600); // several resyncs replay every object as an update
    assertEquals(revision, onStore(ResourceStore::revision));
  }
}
