package dev.nodemesh.control.status;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.MissingNode;
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
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * GEP-1426 route status through the real Kubernetes source against fabric8's mock API server in
 * CRUD mode: consumer routes (team-b on team-a's Service) are Accepted and say they apply to team-b
 * only, a consumer route on a missing Service says so, and an HTTPRoute loses its port to a
 * GRPCRoute of its group (Conflicted) until that GRPCRoute goes.
 */
@EnableKubernetesMockClient(crud = true)
class ConsumerRouteStatusWriterTest {
  private static final Duration WAIT = Duration.ofSeconds(15);
  static KubernetesClient client;

  private static final ResourceDefinitionContext HTTP_ROUTES = routes("HTTPRoute", "httproutes");
  private static final ResourceDefinitionContext GRPC_ROUTES = routes("GRPCRoute", "grpcroutes");

  private static ResourceDefinitionContext routes(String kind, String plural) {
    return new ResourceDefinitionContext.Builder()
        .withGroup("gateway.networking.k8s.io")
        .withVersion("v1")
        .withKind(kind)
        .withPlural(plural)
        .withNamespaced(true)
        .build();
  }

  private final ExecutorService executor = Executors.newSingleThreadExecutor();
  private final Clock clock = Clock.fixed(Instant.parse("2026-11-23T01:00:00Z"), ZoneOffset.UTC);
  private @Nullable KubernetesSource source;

  @AfterEach
  void stop() throws Exception {
    if (source != null) {
      source.close();
    }
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
  }

  private void start() throws Exception {
    RouteStatusWriter w = new RouteStatusWriter(client, RouteStatus.CONTROLLER, clock, null);
    KubernetesSource s = new KubernetesSource(client, 0, w);
    source = s;
    s.start(new ResourceStore(System::nanoTime, () -> {}), executor);
    Await.until(WAIT, "sync", s::ready);
  }

  private static void service(String namespace, String name, String ip) {
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
                .withClusterIP(ip)
                .addNewPort()
                .withPort(80)
                .endPort()
                .addNewPort()
                .withPort(9090)
                .endPort()
                .endSpec()
                .build())
        .create();
  }

  private static void create(ResourceDefinitionContext kind, String yaml) {
    GenericKubernetesResource r =
        client.getKubernetesSerialization().unmarshal(yaml, GenericKubernetesResource.class);
    client
        .genericKubernetesResources(kind)
        .inNamespace(r.getMetadata().getNamespace())
        .resource(r)
        .create();
  }

  /** Our Accepted condition on the route's first parentRef, or a missing node. */
  private static JsonNode accepted(String namespace, String name) {
    GenericKubernetesResource r =
        client.genericKubernetesResources(HTTP_ROUTES).inNamespace(namespace).withName(name).get();
    if (r == null) {
      return MissingNode.getInstance();
    }
    JsonNode tree = client.getKubernetesSerialization().convertValue(r, JsonNode.class);
    for (JsonNode p : tree.path("status").path("parents")) {
      if (RouteStatus.CONTROLLER.equals(p.path("controllerName").asText())) {
        for (JsonNode c : p.path("conditions")) {
          if ("Accepted".equals(c.path("type").asText())) {
            return c;
          }
        }
      }
    }
    return MissingNode.getInstance();
  }

  private static boolean is(String namespace, String name, String status, String reason) {
    JsonNode c = accepted(namespace, name);
    return status.equals(c.path("status").asText()) && reason.equals(c.path("reason").asText());
  }

  private static String httpRoute(String namespace, String name, String parent) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: %s, namespace: %s}
        spec:
          parentRefs: [%s]
          rules: [{backendRefs: [{name: alt, namespace: team-b, port: 80}]}]
        """
        .formatted(name, namespace, parent);
  }

  @Test
  void consumerRoutesAreAcceptedForTheirNamespaceAndConflictsAreReported() throws Exception {
    service("team-a", "api", "10.96.1.1");
    service("team-a", "rpc", "10.96.1.2");
    service("team-b", "alt", "10.96.1.3");
    create(
        HTTP_ROUTES,
        httpRoute("team-b", "take-over", "{kind: Service, name: api, namespace: team-a}"));
    create(
        HTTP_ROUTES,
        httpRoute("team-b", "nowhere", "{kind: Service, name: gone, namespace: team-a}"));
    create(HTTP_ROUTES, httpRoute("team-a", "rpc-http", "{kind: Service, name: rpc, port: 80}"));
    create(
        GRPC_ROUTES,
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: GRPCRoute
        metadata: {name: rpc-grpc, namespace: team-a}
        spec:
          parentRefs: [{kind: Service, name: rpc}]
          rules: [{backendRefs: [{name: rpc, port: 9090}]}]
        """);
    start();

    Await.until(WAIT, "consumer accepted", () -> is("team-b", "take-over", "True", "Accepted"));
    assertEquals(
        "consumer route: attached to Service team-a/api for calls from namespace team-b only",
        accepted("team-b", "take-over").path("message").asText());
    Await.until(WAIT, "missing parent", () -> is("team-b", "nowhere", "False", "NoMatchingParent"));
    assertEquals(
        "Service team-a/gone does not exist",
        accepted("team-b", "nowhere").path("message").asText());
    Await.until(
        WAIT, "conflicted", () -> is("team-a", "rpc-http", "False", RouteStatus.CONFLICTED));
    assertTrue(
        accepted("team-a", "rpc-http")
            .path("message")
            .asText()
            .contains("GRPCRoute team-a/rpc-grpc"),
        accepted("team-a", "rpc-http").toString());

    // The GRPCRoute going away gives the HTTPRoute its port back: a GRPCRoute event recomputes it.
    client
        .genericKubernetesResources(GRPC_ROUTES)
        .inNamespace("team-a")
        .withName("rpc-grpc")
        .delete();
    Await.until(WAIT, "no conflict", () -> is("team-a", "rpc-http", "True", "Accepted"));
    assertTrue(
        accepted("team-a", "rpc-http").path("message").asText().startsWith("producer route:"),
        accepted("team-a", "rpc-http").toString());
  }
}
