package dev.nodemesh.control.status;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.control.source.KubernetesSource;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.proxy.testing.Await;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.ServiceBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Route status written back through the real Kubernetes source against fabric8's mock API server in
 * CRUD mode (status subresource, Leases).
 */
@EnableKubernetesMockClient(crud = true)
class RouteStatusWriterTest {
  private static final Duration WAIT = Duration.ofSeconds(15);
  static KubernetesClient client;

  private static final ResourceDefinitionContext HTTP_ROUTES =
      new ResourceDefinitionContext.Builder()
          .withGroup("gateway.networking.k8s.io")
          .withVersion("v1")
          .withKind("HTTPRoute")
          .withPlural("httproutes")
          .withNamespaced(true)
          .build();

  private static final ResourceDefinitionContext GRANTS =
      new ResourceDefinitionContext.Builder()
          .withGroup("gateway.networking.k8s.io")
          .withVersion("v1beta1")
          .withKind("ReferenceGrant")
          .withPlural("referencegrants")
          .withNamespaced(true)
          .build();

  private final ExecutorService executor = Executors.newSingleThreadExecutor();
  private final AtomicReference<Instant> now =
      new AtomicReference<>(Instant.parse("2026-11-23T01:00:00Z"));
  private final Clock clock =
      new Clock() {
        @Override
        public ZoneOffset getZone() {
          return ZoneOffset.UTC;
        }

        @Override
        public Clock withZone(java.time.ZoneId zone) {
          return this;
        }

        @Override
        public Instant instant() {
          return now.get();
        }
      };
  private @Nullable KubernetesSource source;
  private @Nullable RouteStatusWriter writer;

  @BeforeEach
  void clean() {
    client.services().inNamespace("default").delete();
    client.genericKubernetesResources(HTTP_ROUTES).inNamespace("default").delete();
    client.services().inNamespace("other").delete();
    client.genericKubernetesResources(GRANTS).inNamespace("other").delete();
  }

  @AfterEach
  void stop() throws Exception {
    if (source != null) {
      source.close();
    }
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
  }

  private RouteStatusWriter start(RouteStatusWriter.@Nullable Lease lease, long resyncMillis)
      throws Exception {
    RouteStatusWriter w = new RouteStatusWriter(client, RouteStatus.CONTROLLER, clock, lease);
    writer = w;
    KubernetesSource s = new KubernetesSource(client, resyncMillis, w);
    source = s;
    s.start(new ResourceStore(System::nanoTime, () -> {}), executor);
    Await.until(WAIT, "sync", s::ready);
    return w;
  }

  private static void service(String name, int port) {
    service("default", name, port);
  }

  private static void service(String namespace, String name, int port) {
    client
        .services()
        .inNamespace(namespace)
        .resource(
            new ServiceBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(namespace)
                .endMetadata()
                .withNewSpec()
                .withClusterIP("10.96.0." + (10 + name.length()))
                .addNewPort()
                .withPort(port)
                .endPort()
                .endSpec()
                .build())
        .create();
  }

  private static void route(String yaml) {
    GenericKubernetesResource r =
        client.getKubernetesSerialization().unmarshal(yaml, GenericKubernetesResource.class);
    client.genericKubernetesResources(HTTP_ROUTES).inNamespace("default").resource(r).create();
  }

  private static @Nullable GenericKubernetesResource get(String name) {
    return client
        .genericKubernetesResources(HTTP_ROUTES)
        .inNamespace("default")
        .withName(name)
        .get();
  }

  private static JsonNode parents(String name) {
    GenericKubernetesResource r = get(name);
    return r == null
        ? com.fasterxml.jackson.databind.node.MissingNode.getInstance()
        : client
            .getKubernetesSerialization()
            .convertValue(r, JsonNode.class)
            .path("status")
            .path("parents");
  }

  /** The condition {@code type} of our entry for the route's first parentRef, or a missing node. */
  private static JsonNode condition(String route, String type) {
    for (JsonNode p : parents(route)) {
      if (RouteStatus.CONTROLLER.equals(p.path("controllerName").asText())) {
        for (JsonNode c : p.path("conditions")) {
          if (type.equals(c.path("type").asText())) {
            return c;
          }
        }
      }
    }
    return com.fasterxml.jackson.databind.node.MissingNode.getInstance();
  }

  private static boolean is(String route, String type, String status, String reason) {
    JsonNode c = condition(route, type);
    return status.equals(c.path("status").asText()) && reason.equals(c.path("reason").asText());
  }

  private static final String WEB =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: web, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: web, port: 80}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /v2}}]
            backendRefs: [{name: web-v2, port: 80}]
      """;

  @Test
  void aMissingBackendIsReportedUntilItsServiceExistsAndNothingIsRewrittenWhenNothingChanged()
      throws Exception {
    service("web", 80);
    route(WEB);
    RouteStatusWriter w = start(null, 1_000); // fabric8's shortest resync
    Await.until(
        WAIT, "ResolvedRefs False", () -> is("web", "ResolvedRefs", "False", "BackendNotFound"));
    assertTrue(is("web", "Accepted", "True", "Accepted"));
    JsonNode entry = parents("web").get(0);
    assertEquals("web", entry.path("parentRef").path("name").asText());
    assertEquals(80, entry.path("parentRef").path("port").asInt());
    assertTrue(
        condition("web", "ResolvedRefs").path("message").asText().contains("default/web-v2"),
        condition("web", "ResolvedRefs").toString());
    assertEquals(
        "2026-11-23T01:00:00Z", condition("web", "Accepted").path("lastTransitionTime").asText());

    now.set(Instant.parse("2026-11-23T01:05:00Z"));
    service("web-v2", 80);
    Await.until(WAIT, "ResolvedRefs True", () -> is("web", "ResolvedRefs", "True", "ResolvedRefs"));
    // Only the condition that changed has a new transition time.
    assertEquals(
        "2026-11-23T01:05:00Z",
        condition("web", "ResolvedRefs").path("lastTransitionTime").asText());
    assertEquals(
        "2026-11-23T01:00:00Z", condition("web", "Accepted").path("lastTransitionTime").asText());

    // Resyncs every second recompute the route; the status is the same, so nothing is written.
    String version = get("web").getMetadata().getResourceVersion();
    long writes = w.writes();
    now.set(Instant.parse("2026-11-23T01:10:00Z"));
    Thread.sleep(3_000);
    assertEquals(writes, w.writes());
    assertEquals(version, get("web").getMetadata().getResourceVersion());

    // The Service going away flips it back.
    client.services().inNamespace("default").withName("web-v2").delete();
    Await.until(
        WAIT,
        "ResolvedRefs False again",
        () -> is("web", "ResolvedRefs", "False", "BackendNotFound"));
  }

  @Test
  void aCrossNamespaceBackendIsRefNotPermittedUntilAReferenceGrantAllowsIt() throws Exception {
    service("web", 80);
    service("other", "db", 5432);
    route(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: web, namespace: default}
        spec:
          parentRefs: [{group: "", kind: Service, name: web, port: 80}]
          rules:
            - backendRefs: [{name: web, port: 80}, {name: db, namespace: other, port: 5432}]
        """);
    start(null, 0);
    Await.until(
        WAIT, "RefNotPermitted", () -> is("web", "ResolvedRefs", "False", "RefNotPermitted"));
    String message = condition("web", "ResolvedRefs").path("message").asText();
    assertTrue(
        message.startsWith(
            "spec.rules[0].backendRefs[1]: Service other/db is in another namespace"),
        message);

    // A grant for GRPCRoutes only changes nothing; one for HTTPRoutes from default does.
    grant("for-grpc", "GRPCRoute", "db");
    grant("for-http", "HTTPRoute", "db");
    Await.until(WAIT, "ResolvedRefs True", () -> is("web", "ResolvedRefs", "True", "ResolvedRefs"));

    client.genericKubernetesResources(GRANTS).inNamespace("other").withName("for-http").delete();
    Await.until(
        WAIT, "RefNotPermitted again", () -> is("web", "ResolvedRefs", "False", "RefNotPermitted"));
  }

  private static void grant(String name, String fromKind, String toName) {
    GenericKubernetesResource g =
        client
            .getKubernetesSerialization()
            .unmarshal(
                """
                apiVersion: gateway.networking.k8s.io/v1beta1
                kind: ReferenceGrant
                metadata: {name: %s, namespace: other}
                spec:
                  from: [{group: gateway.networking.k8s.io, kind: %s, namespace: default}]
                  to: [{group: "", kind: Service, name: %s}]
                """
                    .formatted(name, fromKind, toName),
                GenericKubernetesResource.class);
    client.genericKubernetesResources(GRANTS).inNamespace("other").resource(g).create();
  }

  @Test
  void refusedRoutesNonServiceBackendsAndGatewayParentsAndOtherControllersEntries()
      throws Exception {
    service("web", 80);
    service("api", 80);
    // Refused by the parser: Accepted False with its reason.
    route(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: bad-regex, namespace: default}
        spec:
          parentRefs: [{group: "", kind: Service, name: web, port: 80}]
          rules:
            - matches: [{path: {type: RegularExpression, value: "/(unclosed"}}]
              backendRefs: [{name: web, port: 80}]
        """);
    route(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: bucket, namespace: default}
        spec:
          parentRefs: [{group: "", kind: Service, name: api, port: 80}]
          rules:
            - backendRefs: [{group: storage.example.com, kind: Bucket, name: b, port: 80}]
        """);
    // A parent Service port that does not exist.
    route(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: wrong-port, namespace: default}
        spec:
          parentRefs: [{group: "", kind: Service, name: web, port: 81}]
          rules:
            - backendRefs: [{name: web, port: 80}]
        """);
    // For a Gateway only: not ours, and another controller's entry must survive us.
    route(
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: north-south, namespace: default}
        spec:
          parentRefs: [{name: public-gateway}]
          rules:
            - backendRefs: [{name: web, port: 80}]
        """);
    var ns = get("north-south");
    var other =
        java.util.Map.of(
            "parents",
            java.util.List.of(
                java.util.Map.of(
                    "parentRef", java.util.Map.of("name", "public-gateway"),
                    "controllerName", "example.com/gateway",
                    "conditions", java.util.List.of())));
    ns.setAdditionalProperty("status", other);
    client
        .genericKubernetesResources(HTTP_ROUTES)
        .inNamespace("default")
        .resource(ns)
        .updateStatus();
    String nsVersion = get("north-south").getMetadata().getResourceVersion();

    RouteStatusWriter w = start(null, 0);
    Await.until(
        WAIT, "bad-regex refused", () -> is("bad-regex", "Accepted", "False", "UnsupportedValue"));
    assertTrue(
        condition("bad-regex", "Accepted").path("message").asText().contains("spec.rules[0]"),
        condition("bad-regex", "Accepted").toString());
    assertTrue(is("bad-regex", "ResolvedRefs", "True", "ResolvedRefs"));
    Await.until(WAIT, "bucket", () -> is("bucket", "ResolvedRefs", "False", "InvalidKind"));
    assertTrue(is("bucket", "Accepted", "False", "UnsupportedValue"));
    Await.until(
        WAIT, "wrong-port", () -> is("wrong-port", "Accepted", "False", "NoMatchingParent"));

    // Mixed parents: a Gateway's entry of another controller stays next to ours.
    GenericKubernetesResource mixed = get("north-south");
    assertEquals(nsVersion, mixed.getMetadata().getResourceVersion()); // untouched so far
    assertEquals(1, parents("north-south").size());
    assertEquals(
        "example.com/gateway", parents("north-south").get(0).path("controllerName").asText());
    mixed.setAdditionalProperty(
        "spec",
        client
            .getKubernetesSerialization()
            .unmarshal(
                """
                parentRefs: [{name: public-gateway}, {group: "", kind: Service, name: web}]
                rules: [{backendRefs: [{name: web, port: 80}]}]
                """,
                java.util.Map.class));
    client.genericKubernetesResources(HTTP_ROUTES).inNamespace("default").resource(mixed).update();
    Await.until(WAIT, "mixed accepted", () -> is("north-south", "Accepted", "True", "Accepted"));
    assertEquals(2, parents("north-south").size());
    assertEquals(
        "example.com/gateway", parents("north-south").get(0).path("controllerName").asText());
    assertTrue(w.writes() >= 4);
  }

  @Test
  void withALeaseOnlyTheHolderWrites() throws Exception {
    service("web", 80);
    route(WEB);
    RouteStatusWriter w =
        start(
            new RouteStatusWriter.Lease("default", "nodemesh-control-route-status", "replica-1"),
            0);
    Await.until(WAIT, "lease held", w::leading);
    Await.until(WAIT, "status", () -> is("web", "ResolvedRefs", "False", "BackendNotFound"));
    var lease =
        client.leases().inNamespace("default").withName("nodemesh-control-route-status").get();
    assertEquals("replica-1", lease.getSpec().getHolderIdentity());

    // A second replica, with the lease held by the first, writes nothing.
    RouteStatusWriter second =
        new RouteStatusWriter(
            client,
            RouteStatus.CONTROLLER,
            clock,
            new RouteStatusWriter.Lease("default", "nodemesh-control-route-status", "replica-2"));
    ExecutorService otherExecutor = Executors.newSingleThreadExecutor();
    try (KubernetesSource s = new KubernetesSource(client, 0, second)) {
      s.start(new ResourceStore(System::nanoTime, () -> {}), otherExecutor);
      Await.until(WAIT, "second synced", s::ready);
      Thread.sleep(1_000);
      assertFalse(second.leading());
      assertEquals(0, second.writes());
    } finally {
      otherExecutor.shutdownNow();
    }
  }
}
