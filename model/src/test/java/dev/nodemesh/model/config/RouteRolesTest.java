package dev.nodemesh.model.config;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.kind.HttpRouteKind;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.proto.ResourceDecoder;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * GEP-1426 producer and consumer routes, HTTPRoute and GRPCRoute, read from local YAML and carried
 * over the xDS encoding: each parentRef's role and the group a caller is routed by survive both.
 */
class RouteRolesTest {
  private static final NamespacedName API = new NamespacedName("team-a", "api");

  private static String route(String kind, String namespace, String name, String parentNs) {
    String rules =
        kind.equals("GRPCRoute")
            ? "  rules: [{matches: [{method: {service: test.Echo}}], backendRefs: [{name: api,"
                + " namespace: team-a, port: 80}]}]\n"
            : "  rules: [{backendRefs: [{name: api, namespace: team-a, port: 80}]}]\n";
    return "apiVersion: gateway.networking.k8s.io/v1\nkind: "
        + kind
        + "\nmetadata: {name: "
        + name
        + ", namespace: "
        + namespace
        + "}\nspec:\n  parentRefs: [{kind: Service, name: api"
        + (parentNs == null ? "" : ", namespace: " + parentNs)
        + "}]\n"
        + rules;
  }

  private static String grant() {
    // The consumer routes' backendRefs point into team-a: this project asks for a grant there.
    return """
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: ReferenceGrant
        metadata: {name: callers, namespace: team-a}
        spec:
          from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: team-b},
                 {group: gateway.networking.k8s.io, kind: GRPCRoute, namespace: team-b}]
          to: [{group: "", kind: Service}]
        """;
  }

  @ParameterizedTest
  @ValueSource(strings = {"HTTPRoute", "GRPCRoute"})
  void rolesAndGroupsSurviveTheLocalPathAndTheWire(String kind, @TempDir Path dir)
      throws Exception {
    MeshYaml.write(
        dir,
        "all.yaml",
        docs(
            service("team-a", "api", "[10.96.0.1]", "{app: api}", "[{name: http, port: 80}]"),
            route(kind, "team-a", "own", null),
            route(kind, "team-a", "own-explicit", "team-a"),
            route(kind, "team-b", "theirs", "team-a"),
            grant()));
    ConfigSnapshot local = ConfigLoader.load(dir);
    assertGroups(local, kind);

    // The xDS path: every route encoded and decoded as the proxy does.
    List<HttpRoute> decoded = new ArrayList<>();
    List<String> errors = new ArrayList<>();
    for (HttpRoute r : local.httpRoutes()) {
      decoded.add(
          HttpRouteKind.WIRE.decode(
              new ResourceDecoder(errors), HttpRouteKind.resourceName(r), HttpRouteKind.encode(r)));
    }
    assertEquals(List.of(), errors);
    assertEquals(local.httpRoutes(), decoded);
    assertGroups(
        new ConfigSnapshot(2, local.workloads(), local.services(), List.of(), List.of(), decoded),
        kind);
  }

  private static void assertGroups(ConfigSnapshot s, String kind) {
    for (HttpRoute r : s.httpRoutes()) {
      assertEquals(kind, r.kind());
      assertEquals(
          r.namespace().equals("team-b") ? HttpRoute.Role.CONSUMER : HttpRoute.Role.PRODUCER,
          r.role(r.parents().get(0)),
          r.id().toString());
    }
    assertEquals(List.of("team-b/theirs"), routesFor(s, "team-b"));
    assertEquals(List.of("team-a/own", "team-a/own-explicit"), routesFor(s, "team-a"));
    assertEquals(List.of("team-a/own", "team-a/own-explicit"), routesFor(s, "team-c"));
  }

  private static List<String> routesFor(ConfigSnapshot s, String caller) {
    return s.httpRoutes(API, 80, caller).stream()
        .map(e -> e.route().id().toString())
        .distinct()
        .toList();
  }

  @Test
  void aParentRefNamespaceMustBeANamespaceName(@TempDir Path dir) {
    MeshYaml.write(
        dir,
        "r.yaml",
        route("HTTPRoute", "team-b", "bad", "\"\"")
            + "---\n"
            + route("HTTPRoute", "team-b", "worse", "Team_A"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(2, e.errors().size(), e.errors().toString());
    assertTrue(
        e.errors().get(0).contains("spec.parentRefs[0].namespace: \"\" is not a namespace name"),
        e.errors().toString());
    assertTrue(e.errors().get(1).contains("\"Team_A\" is not a namespace name"), e.errors().get(1));
  }
}
