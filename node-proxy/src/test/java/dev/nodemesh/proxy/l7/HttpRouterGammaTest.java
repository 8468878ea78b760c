package dev.nodemesh.proxy.l7;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Which routes a caller is routed by (GEP-1426 producer and consumer routes), as a table over one
 * YAML-built mesh of four tenants; no sockets. team-a owns the Services; team-b and team-d each
 * have consumer routes on them; team-c has none and must see only team-a's producer routes.
 */
class HttpRouterGammaTest {
  private static final String PORTS =
      "[{name: http, port: 80, targetPort: 8080}, {name: alt, port: 8080, targetPort: 8080}]";
  private static ConfigSnapshot mesh;

  @BeforeAll
  static void load(@TempDir Path dir) throws Exception {
    MeshYaml.write(
        dir,
        "pods.yaml",
        docs(
            pod("team-a", "api-1", "10.1.0.11", "{app: api}", "[]"),
            pod("team-a", "v2-1", "10.1.0.12", "{app: api-v2}", "[]"),
            pod("team-b", "alt-1", "10.1.0.13", "{app: alt}", "[]"),
            pod("team-d", "dee-1", "10.1.0.14", "{app: dee}", "[]"),
            pod("team-a", "solo-1", "10.1.0.15", "{app: solo}", "[]"),
            pod("team-a", "rpc-1", "10.1.0.16", "{app: rpc}", "[]")));
    MeshYaml.write(
        dir,
        "services.yaml",
        docs(
            service("team-a", "api", "[10.96.0.1]", "{app: api}", PORTS),
            service("team-a", "api-v2", "[10.96.0.2]", "{app: api-v2}", PORTS),
            service("team-b", "alt", "[10.96.0.3]", "{app: alt}", PORTS),
            service("team-d", "dee", "[10.96.0.4]", "{app: dee}", PORTS),
            service("team-a", "solo", "[10.96.0.5]", "{app: solo}", PORTS),
            service("team-a", "rpc", "[10.96.0.6]", "{app: rpc}", PORTS)));
    MeshYaml.write(dir, "routes.yaml", ROUTES);
    mesh = ConfigLoader.load(dir);
  }

  private static final String ROUTES =
      """
      # team-a's own (producer) route on api: /v2 to api-v2, the rest to api.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: api, namespace: team-a}
      spec:
        parentRefs: [{kind: Service, name: api, namespace: team-a}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /v2}}]
            backendRefs: [{name: api-v2, port: 80}]
          - backendRefs: [{name: api, port: 80}]
      ---
      # team-b's consumer route on team-a's api, port 80 only: every team-b call to alt, with a
      # fault and a mirror that must never touch another namespace's calls.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: take-over, namespace: team-b}
      spec:
        parentRefs: [{kind: Service, name: api, namespace: team-a, port: 80}]
        rules:
          - filters:
              - type: ExtensionRef
                extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: broken}
              - type: RequestMirror
                requestMirror: {backendRef: {name: alt, port: 80}}
            backendRefs: [{name: alt, port: 80}]
      ---
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: HTTPFault
      metadata: {name: broken, namespace: team-b}
      spec:
        abort: {httpStatus: 503, percentage: 100}
      ---
      # team-d's consumer route on api: only /d to dee (so /v2 from team-d is a 404: the consumer
      # group replaces the producer's, it does not add to it).
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: d, namespace: team-d}
      spec:
        parentRefs: [{kind: Service, name: api, namespace: team-a}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /d}}]
            backendRefs: [{name: dee, port: 80}]
      ---
      # solo has no producer route, only team-b's consumer route.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: solo, namespace: team-b}
      spec:
        parentRefs: [{kind: Service, name: solo, namespace: team-a}]
        rules:
          - backendRefs: [{name: alt, port: 80}]
      ---
      # rpc: an HTTPRoute and a GRPCRoute of team-a on one port: only the GRPCRoute applies there.
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: rpc-http, namespace: team-a}
      spec:
        parentRefs: [{kind: Service, name: rpc}]
        rules:
          - backendRefs: [{name: api, port: 80}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata: {name: rpc-grpc, namespace: team-a}
      spec:
        parentRefs: [{kind: Service, name: rpc, port: 80}]
        rules:
          - backendRefs: [{name: api-v2, port: 80}]
      """;

  static Stream<Arguments> table() {
    return Stream.of(
        // caller namespace, Service (team-a), port, path, expected "backend by route" or status
        // producer only: team-a's and team-c's callers follow team-a's route
        Arguments.of("team-a", "api", 80, "/v2/x", "api-v2 by team-a/api"),
        Arguments.of("team-a", "api", 80, "/", "api by team-a/api"),
        Arguments.of("team-c", "api", 80, "/v2/x", "api-v2 by team-a/api"),
        Arguments.of("team-c", "api", 80, "/d", "api by team-a/api"),
        // both: team-b's consumer route replaces the producer route for team-b only
        Arguments.of("team-b", "api", 80, "/v2/x", "alt by team-b/take-over"),
        Arguments.of("team-b", "api", 80, "/", "alt by team-b/take-over"),
        Arguments.of("team-d", "api", 80, "/d/1", "dee by team-d/d"),
        Arguments.of("team-d", "api", 80, "/v2/x", "404"),
        // team-b's consumer route names port 80: its calls to 8080 follow the producer route
        Arguments.of("team-b", "api", 8080, "/v2/x", "api-v2 by team-a/api"),
        // team-d's covers every port
        Arguments.of("team-d", "api", 8080, "/d", "dee by team-d/d"),
        // consumer only: everyone but team-b reaches the Service itself
        Arguments.of("team-b", "solo", 80, "/", "alt by team-b/solo"),
        Arguments.of("team-a", "solo", 80, "/", "solo by (service)"),
        Arguments.of("team-c", "solo", 80, "/", "solo by (service)"),
        // GEP-1426 route types: the GRPCRoute wins on port 80, the HTTPRoute keeps port 8080
        Arguments.of("team-c", "rpc", 80, "/", "api-v2 by team-a/rpc-grpc"),
        Arguments.of("team-c", "rpc", 8080, "/", "api by team-a/rpc-http"));
  }

  @ParameterizedTest(name = "{0} -> team-a/{1}:{2}{3} = {4}")
  @MethodSource("table")
  void routesByTheCallersGroup(
      String caller, String service, int port, String path, String expected) {
    assertEquals(expected, outcome(route(caller, service, port, path)));
  }

  @Test
  void aHostileConsumerRouteShapesOnlyItsOwnNamespacesCalls() {
    // team-b's fault and mirror are on the entry team-b is routed by...
    HttpRouter.ToBackend b = (HttpRouter.ToBackend) route("team-b", "api", 80, "/");
    assertNotNull(b.entry().rule().fault());
    assertNotNull(b.entry().rule().mirror());
    assertEquals(HttpRoute.Role.CONSUMER, b.entry().role());
    // ...and on none of what any other namespace can reach on any port.
    for (String caller : new String[] {"team-a", "team-c", "team-d", "kube-system"}) {
      for (int port : new int[] {80, 8080}) {
        for (HttpRouteEntry e :
            mesh.httpRoutes(new NamespacedName("team-a", "api"), port, caller)) {
          assertFalse(e.route().namespace().equals("team-b"), caller + " got " + e);
          assertNull(e.rule().fault());
          assertNull(e.rule().mirror());
        }
      }
    }
  }

  @Test
  void rolesComeFromTheRoutesAndTheParentsNamespaces() {
    for (HttpRoute r : mesh.httpRoutes()) {
      for (HttpRoute.Parent p : r.parents()) {
        boolean sameNamespace = r.namespace().equals(p.service().namespace());
        assertEquals(
            sameNamespace ? HttpRoute.Role.PRODUCER : HttpRoute.Role.CONSUMER,
            r.role(p),
            r.id() + " -> " + p);
      }
    }
    NamespacedName solo = new NamespacedName("team-a", "solo");
    assertTrue(mesh.hasHttpRoute(solo, 80, "team-b"));
    assertFalse(mesh.hasHttpRoute(solo, 80, "team-a"), "no L7 for callers no route applies to");
    assertFalse(mesh.hasHttpRoute(solo, 80, "team-c"));
    assertEquals(1, mesh.httpRoutes(solo).size(), "every group, for dumps");
  }

  private static HttpRouter.Decision route(String caller, String service, int port, String path) {
    MeshService svc = mesh.serviceByName(new NamespacedName("team-a", service));
    return HttpRouter.route(
        mesh, caller, svc, port, "GET", path, new DefaultHttpHeaders(), bound -> 0);
  }

  private static String outcome(HttpRouter.Decision d) {
    if (d instanceof HttpRouter.ToBackend b) {
      HttpRoute r = b.entry().route();
      String by = r.name().equals("(service)") ? r.name() : r.id().toString();
      return b.service().name() + " by " + by;
    }
    if (d instanceof HttpRouter.NoMatch) {
      return "404";
    }
    return "500 " + ((HttpRouter.BadBackend) d).reason();
  }
}
