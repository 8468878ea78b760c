package dev.nodemesh.control.status;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.ReferenceGrant;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The status computation alone: no API server, every case from a route tree. */
class RouteStatusTest {
  private static final ObjectMapper YAML = new ObjectMapper(new YAMLFactory());
  private static final RouteStatus.Services SERVICES =
      (ns, name) ->
          Map.of("default/web", Set.of(80), "other/db", Set.of(5432)).get(ns + "/" + name);

  private static JsonNode route(String spec) throws Exception {
    return YAML.readTree(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\n"
            + "metadata: {name: r, namespace: default, generation: 3}\n"
            + spec);
  }

  /** HTTPRoutes in default may use every Service in other. */
  private static final List<ReferenceGrant> GRANTS =
      List.of(
          new ReferenceGrant(
              "other",
              "from-default",
              List.of(
                  new ReferenceGrant.From(ReferenceGrant.GATEWAY_GROUP, "HTTPRoute", "default")),
              List.of(new ReferenceGrant.To("", "Service", null))));

  private static ArrayNode parents(JsonNode route, List<String> errors, String now) {
    return RouteStatus.parents(route, errors, SERVICES, GRANTS, now, RouteStatus.CONTROLLER);
  }

  private static JsonNode cond(ArrayNode parents, int i, String type) {
    for (JsonNode c : parents.get(i).path("conditions")) {
      if (type.equals(c.path("type").asText())) {
        return c;
      }
    }
    throw new AssertionError("no " + type + " in " + parents);
  }

  @Test
  void eachServiceParentGetsAcceptedAndResolvedRefs() throws Exception {
    JsonNode r =
        route(
            """
            spec:
              parentRefs:
                - {group: "", kind: Service, name: web, port: 80}
                - {group: "", kind: Service, name: web, port: 80}
                - {group: "", kind: Service, name: db, namespace: other, port: 1}
                - {group: "", kind: Service, name: gone}
                - {name: gw}
              rules:
                - backendRefs: [{name: web, port: 80}, {name: db, namespace: other, port: 5432}]
            """);
    ArrayNode p = parents(r, List.of(), "2026-11-23T01:00:00Z");
    assertEquals(3, p.size(), p.toString()); // the duplicate once, the Gateway not at all
    assertEquals("Accepted", cond(p, 0, "Accepted").path("reason").asText());
    assertEquals("NoMatchingParent", cond(p, 1, "Accepted").path("reason").asText());
    assertTrue(cond(p, 1, "Accepted").path("message").asText().contains("no port 1"));
    assertEquals("NoMatchingParent", cond(p, 2, "Accepted").path("reason").asText());
    assertEquals("True", cond(p, 0, "ResolvedRefs").path("status").asText());
    assertEquals(3, cond(p, 0, "ResolvedRefs").path("observedGeneration").asInt());
    assertEquals(RouteStatus.CONTROLLER, p.get(0).path("controllerName").asText());
    assertEquals(r.path("spec").path("parentRefs").get(0), p.get(0).path("parentRef"));
  }

  @Test
  void invalidKindOutranksMissingBackendsAndMirrorsCount() throws Exception {
    JsonNode r =
        route(
            """
            spec:
              parentRefs: [{group: "", kind: Service, name: web}]
              rules:
                - backendRefs: [{name: nope, port: 80}]
                  filters:
                    - type: RequestMirror
                      requestMirror: {backendRef: {name: shadow, port: 80}}
                - backendRefs: [{group: example.com, kind: Bucket, name: b}]
            """);
    JsonNode c = cond(parents(r, List.of(), "t"), 0, "ResolvedRefs");
    assertEquals("False", c.path("status").asText());
    assertEquals("InvalidKind", c.path("reason").asText());
    String m = c.path("message").asText();
    assertTrue(
        m.contains("example.com/Bucket") && m.contains("default/nope") && m.contains("shadow"), m);
  }

  @Test
  void aConsumerRouteSendingToItsParentServiceNeedsNoGrant() throws Exception {
    // A route in default attached to other/db (a consumer route) may send to other/db itself, as
    // the proxies route it (ReferenceGrant.permits with the route); not to another Service there.
    JsonNode ok =
        route(
            """
            spec:
              parentRefs: [{group: "", kind: Service, name: db, namespace: other}]
              rules:
                - backendRefs: [{name: db, namespace: other, port: 5432}]
            """);
    JsonNode c =
        cond(
            RouteStatus.parents(ok, List.of(), SERVICES, List.of(), "t", RouteStatus.CONTROLLER),
            0,
            "ResolvedRefs");
    assertEquals("True", c.path("status").asText(), c.toString());
    JsonNode other =
        route(
            """
            spec:
              parentRefs: [{group: "", kind: Service, name: db, namespace: other}]
              rules:
                - backendRefs: [{name: cache, namespace: other, port: 5432}]
            """);
    c =
        cond(
            RouteStatus.parents(other, List.of(), SERVICES, List.of(), "t", RouteStatus.CONTROLLER),
            0,
            "ResolvedRefs");
    assertEquals("RefNotPermitted", c.path("reason").asText(), c.toString());
  }

  @Test
  void aCrossNamespaceBackendWithoutAGrantIsRefNotPermitted() throws Exception {
    String spec =
        """
        spec:
          parentRefs: [{group: "", kind: Service, name: web}]
          rules:
            - backendRefs: [{name: web, port: 80}, {name: nope, namespace: other, port: 80}]
            - backendRefs: [{name: gone, port: 80}]
              filters:
                - type: RequestMirror
                  requestMirror: {backendRef: {name: db, namespace: other, port: 5432}}
        """;
    JsonNode r = route(spec);
    JsonNode c =
        cond(
            RouteStatus.parents(r, List.of(), SERVICES, List.of(), "t", RouteStatus.CONTROLLER),
            0,
            "ResolvedRefs");
    assertEquals("False", c.path("status").asText());
    assertEquals("RefNotPermitted", c.path("reason").asText());
    // Every problem named by its field; a Service not permitted is not looked up (nope does not
    // exist, and the message does not say so).
    assertEquals(
        "spec.rules[0].backendRefs[1]: Service other/nope is in another namespace and no"
            + " ReferenceGrant in other permits HTTPRoutes from default to use it;"
            + " spec.rules[1].filters[0].requestMirror.backendRef: Service other/db is in another"
            + " namespace and no ReferenceGrant in other permits HTTPRoutes from default to use it;"
            + " spec.rules[1].backendRefs[0]: Service default/gone does not exist",
        c.path("message").asText());
    // The grant permits HTTPRoutes, not GRPCRoutes.
    JsonNode grpc = route(spec.replace("HTTPRoute", "GRPCRoute"));
    ((ObjectNode) grpc).put("kind", "GRPCRoute");
    assertEquals(
        "RefNotPermitted",
        cond(parents(grpc, List.of(), "t"), 0, "ResolvedRefs").path("reason").asText());
    // With the grant only the missing Service is left.
    c = cond(parents(r, List.of(), "t"), 0, "ResolvedRefs");
    assertEquals("BackendNotFound", c.path("reason").asText());
    assertEquals(
        "spec.rules[0].backendRefs[1]: Service other/nope does not exist;"
            + " spec.rules[1].backendRefs[0]: Service default/gone does not exist",
        c.path("message").asText());
  }

  @Test
  void parserErrorsRefuseTheRouteWithTheirText() throws Exception {
    JsonNode r = route("spec: {parentRefs: [{group: '', kind: Service, name: web}]}");
    JsonNode c = cond(parents(r, List.of("spec.rules[0]: bad regex"), "t"), 0, "Accepted");
    assertEquals("False", c.path("status").asText());
    assertEquals("UnsupportedValue", c.path("reason").asText());
    assertTrue(c.path("message").asText().endsWith("spec.rules[0]: bad regex"));
  }

  @Test
  void recomputingWhatWasWrittenGivesTheSameTreeAndKeepsOtherControllers() throws Exception {
    JsonNode r =
        route(
            """
            spec:
              parentRefs: [{name: gw}, {group: "", kind: Service, name: web, port: 80}]
              rules: [{backendRefs: [{name: nope, port: 80}]}]
            status:
              parents:
                - parentRef: {name: gw}
                  controllerName: example.com/gateway
                  conditions: []
                - parentRef: {name: removed, kind: Service, group: ""}
                  controllerName: nodemesh.dev/control
                  conditions: []
            """);
    ArrayNode first = parents(r, List.of(), "2026-11-23T01:00:00Z");
    assertEquals(2, first.size(), first.toString()); // ours for a removed parentRef is dropped
    assertEquals("example.com/gateway", first.get(0).path("controllerName").asText());
    // As the API server would hand it back: serialized and parsed again.
    ((ObjectNode) r).putObject("status").set("parents", YAML.readTree(first.toString()));
    ArrayNode again = parents(r, List.of(), "2026-11-23T02:00:00Z");
    assertEquals(r.path("status").path("parents"), again); // nothing to write
    // A change of one condition moves only its transition time.
    ArrayNode refused = parents(r, List.of("x"), "2026-11-23T03:00:00Z");
    assertEquals(
        "2026-11-23T03:00:00Z", cond(refused, 1, "Accepted").path("lastTransitionTime").asText());
    assertEquals(
        "2026-11-23T01:00:00Z",
        cond(refused, 1, "ResolvedRefs").path("lastTransitionTime").asText());
  }

  // ---- GEP-1426: producer and consumer routes, route types ----

  private static final RouteStatus.Services TENANTS =
      (ns, name) ->
          Map.of("team-a/api", Set.of(80, 9090), "team-a/rpc", Set.of(80, 9090))
              .get(ns + "/" + name);

  private static JsonNode tenantRoute(String kind, String namespace, String name, String spec)
      throws Exception {
    return YAML.readTree(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: "
            + kind
            + "\nmetadata: {name: "
            + name
            + ", namespace: "
            + namespace
            + ", generation: 1}\n"
            + spec);
  }

  private static HttpRoute grpc(String namespace, String name, String service, int port) {
    return new HttpRoute(
        name,
        namespace,
        List.of(new HttpRoute.Parent(new NamespacedName("team-a", service), port)),
        List.of(),
        false,
        0,
        true);
  }

  private static ArrayNode tenantParents(JsonNode route, List<HttpRoute> grpcRoutes) {
    return RouteStatus.parents(
        route, List.of(), TENANTS, List.of(), grpcRoutes, "t", RouteStatus.CONTROLLER);
  }

  @Test
  void producerAndConsumerRoutesAreAcceptedAndSayWhoTheyApplyTo() throws Exception {
    JsonNode producer =
        tenantRoute(
            "HTTPRoute",
            "team-a",
            "own",
            "spec: {parentRefs: [{kind: Service, name: api}], rules: [{backendRefs: [{name: api,"
                + " port: 80}]}]}");
    JsonNode c = cond(tenantParents(producer, List.of()), 0, "Accepted");
    assertEquals("True", c.path("status").asText());
    assertEquals("Accepted", c.path("reason").asText());
    assertTrue(c.path("message").asText().startsWith("producer route:"), c.toString());

    JsonNode consumer =
        tenantRoute(
            "HTTPRoute",
            "team-b",
            "theirs",
            "spec: {parentRefs: [{kind: Service, name: api, namespace: team-a, port: 80}]}");
    c = cond(tenantParents(consumer, List.of()), 0, "Accepted");
    assertEquals("True", c.path("status").asText());
    assertEquals("Accepted", c.path("reason").asText());
    assertEquals(
        "consumer route: attached to Service team-a/api for calls from namespace team-b only",
        c.path("message").asText());

    // A consumer route to a Service or port that does not exist is not applied, and says why.
    JsonNode missing =
        tenantRoute(
            "HTTPRoute",
            "team-b",
            "lost",
            "spec: {parentRefs: [{kind: Service, name: gone, namespace: team-a},"
                + " {kind: Service, name: api, namespace: team-a, port: 81}]}");
    ArrayNode p = tenantParents(missing, List.of());
    assertEquals("NoMatchingParent", cond(p, 0, "Accepted").path("reason").asText());
    assertEquals(
        "Service team-a/gone does not exist", cond(p, 0, "Accepted").path("message").asText());
    assertEquals("NoMatchingParent", cond(p, 1, "Accepted").path("reason").asText());
    assertTrue(cond(p, 1, "Accepted").path("message").asText().contains("no port 81"));
  }

  @Test
  void aGrpcRouteOfTheSameGroupTakesTheHttpRoutesPorts() throws Exception {
    JsonNode everyPort =
        tenantRoute("HTTPRoute", "team-a", "h", "spec: {parentRefs: [{kind: Service, name: rpc}]}");
    JsonNode port80 =
        tenantRoute(
            "HTTPRoute",
            "team-a",
            "h80",
            "spec: {parentRefs: [{kind: Service, name: rpc, port: 80}]}");

    // A GRPCRoute on every port conflicts with both.
    List<HttpRoute> all = List.of(grpc("team-a", "g", "rpc", 0));
    for (JsonNode r : List.of(everyPort, port80)) {
      JsonNode c = cond(tenantParents(r, all), 0, "Accepted");
      assertEquals("False", c.path("status").asText());
      assertEquals(RouteStatus.CONFLICTED, c.path("reason").asText());
      assertTrue(c.path("message").asText().contains("GRPCRoute team-a/g"), c.toString());
    }

    // One on port 80: the port-80 HTTPRoute conflicts; the every-port one keeps 9090 and says so.
    List<HttpRoute> one = List.of(grpc("team-a", "g", "rpc", 80));
    assertEquals(
        RouteStatus.CONFLICTED,
        cond(tenantParents(port80, one), 0, "Accepted").path("reason").asText());
    JsonNode partial = cond(tenantParents(everyPort, one), 0, "Accepted");
    assertEquals("True", partial.path("status").asText());
    assertTrue(
        partial.path("message").asText().contains("not on port(s) [80]"), partial.toString());

    // Other groups do not conflict: a GRPCRoute of team-b is a consumer route for team-b only, and
    // a GRPCRoute on another Service or port is no rival. The GRPCRoute itself never conflicts.
    List<HttpRoute> elsewhere =
        List.of(
            grpc("team-b", "g", "rpc", 0),
            grpc("team-a", "g2", "api", 0),
            grpc("team-a", "g3", "rpc", 9090));
    assertEquals(
        "Accepted", cond(tenantParents(port80, elsewhere), 0, "Accepted").path("reason").asText());
    JsonNode grpcRoute = ((ObjectNode) port80.deepCopy()).put("kind", "GRPCRoute");
    assertEquals(
        "Accepted", cond(tenantParents(grpcRoute, all), 0, "Accepted").path("reason").asText());

    // The message does not depend on the order the rivals come in (or the status would flap).
    List<HttpRoute> two = List.of(grpc("team-a", "x", "rpc", 0), grpc("team-a", "b", "rpc", 0));
    assertEquals(
        tenantParents(everyPort, two), tenantParents(everyPort, List.of(two.get(1), two.get(0))));
  }
}
