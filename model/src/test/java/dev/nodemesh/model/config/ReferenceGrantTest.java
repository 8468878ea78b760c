package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Which cross-namespace backendRefs a ReferenceGrant permits, and grants in the YAML directory. */
class ReferenceGrantTest {
  @TempDir Path dir;

  private static final NamespacedName DB = new NamespacedName("b", "db");

  private static ReferenceGrant grant(String ns, String fromKind, String fromNs, String toName) {
    return new ReferenceGrant(
        ns,
        "g",
        List.of(new ReferenceGrant.From(ReferenceGrant.GATEWAY_GROUP, fromKind, fromNs)),
        List.of(new ReferenceGrant.To("", "Service", toName.isEmpty() ? null : toName)));
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "no grant                        | ||||false",
        "grant naming the Service        | b|HTTPRoute|a|db|true",
        "grant for every Service         | b|HTTPRoute|a||true",
        "grant naming another Service    | b|HTTPRoute|a|cache|false",
        "grant for GRPCRoutes only       | b|GRPCRoute|a|db|false",
        "grant for another namespace     | b|HTTPRoute|c|db|false",
        "grant in the route's namespace  | a|HTTPRoute|a|db|false",
      })
  void crossNamespace(
      String what, String grantNs, String fromKind, String fromNs, String toName, boolean ok) {
    List<ReferenceGrant> grants =
        grantNs == null
            ? List.of()
            : List.of(grant(grantNs, fromKind, fromNs, toName == null ? "" : toName));
    assertEquals(ok, ReferenceGrant.permits(grants, "HTTPRoute", "a", DB), what);
  }

  @Test
  void sameNamespaceNeedsNoGrant() {
    assertTrue(ReferenceGrant.permits(List.of(), "HTTPRoute", "b", DB));
    assertTrue(ReferenceGrant.permits(List.of(), "GRPCRoute", "b", DB));
  }

  @Test
  void fromAndToMustBeTheGatewayApiRouteAndACoreService() {
    ReferenceGrant wrongFromGroup =
        new ReferenceGrant(
            "b",
            "g",
            List.of(new ReferenceGrant.From("example.com", "HTTPRoute", "a")),
            List.of(new ReferenceGrant.To("", "Service", null)));
    ReferenceGrant toSecret =
        new ReferenceGrant(
            "b",
            "g",
            List.of(new ReferenceGrant.From(ReferenceGrant.GATEWAY_GROUP, "HTTPRoute", "a")),
            List.of(new ReferenceGrant.To("", "Secret", null)));
    assertFalse(ReferenceGrant.permits(List.of(wrongFromGroup), "HTTPRoute", "a", DB));
    assertFalse(ReferenceGrant.permits(List.of(toSecret), "HTTPRoute", "a", DB));
  }

  @Test
  void applyMarksBackendsAndDropsMirrors() {
    HttpRoute.Rule rule =
        new HttpRoute.Rule(
            List.of(HttpRoute.Match.everything()),
            List.of(
                new HttpRoute.Backend(new NamespacedName("a", "web"), 80, 90),
                new HttpRoute.Backend(DB, 80, 10)),
            HttpRoute.HeaderModifier.NONE,
            HttpRoute.HeaderModifier.NONE,
            null,
            null,
            null,
            null,
            null,
            new HttpRoute.Mirror(DB, 80, 100));
    HttpRoute route = new HttpRoute("r", "a", List.of(), List.of(rule), false, 0);
    HttpRoute refused = ReferenceGrant.apply(route, List.of());
    HttpRoute.Rule r = refused.rules().get(0);
    assertEquals(
        List.of(
            new HttpRoute.Backend(new NamespacedName("a", "web"), 80, 90, true),
            new HttpRoute.Backend(DB, 80, 10, false)),
        r.backends());
    assertNull(r.mirror());
    List<ReferenceGrant> grants = List.of(grant("b", "HTTPRoute", "a", "db"));
    assertSame(route, ReferenceGrant.apply(route, grants));
    // A refused backend becomes usable again when the grant appears (the control plane re-derives
    // from the parsed route, but apply is also right on an already marked one).
    assertEquals(List.of(true, true), permitted(ReferenceGrant.apply(refused, grants)));
  }

  @Test
  void aConsumerRouteMaySendToItsOwnParentServiceWithoutAGrant() {
    // Route in a (the consumer) attached to b/db (the producer's Service): sending on to b/db is
    // permitted, another Service of b is not.
    HttpRoute.Rule rule =
        new HttpRoute.Rule(
            List.of(HttpRoute.Match.everything()),
            List.of(
                new HttpRoute.Backend(DB, 80, 1),
                new HttpRoute.Backend(new NamespacedName("b", "cache"), 80, 1)),
            HttpRoute.HeaderModifier.NONE,
            HttpRoute.HeaderModifier.NONE,
            null,
            null,
            null,
            null,
            null,
            new HttpRoute.Mirror(new NamespacedName("b", "cache"), 80, 100));
    HttpRoute route =
        new HttpRoute("r", "a", List.of(new HttpRoute.Parent(DB, 80)), List.of(rule), false, 0);
    assertTrue(ReferenceGrant.permits(List.of(), route, DB));
    assertFalse(ReferenceGrant.permits(List.of(), route, new NamespacedName("b", "cache")));
    HttpRoute applied = ReferenceGrant.apply(route, List.of());
    assertEquals(List.of(true, false), permitted(applied));
    assertNull(applied.rules().get(0).mirror(), "a mirror to another Service still needs a grant");
  }

  private static List<Boolean> permitted(HttpRoute r) {
    return r.rules().get(0).backends().stream().map(HttpRoute.Backend::permitted).toList();
  }

  private static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: r, namespace: a}
      spec:
        parentRefs: [{kind: Service, name: web}]
        rules:
        - backendRefs: [{name: web, port: 80, weight: 90}, {name: db, namespace: b, port: 80, weight: 10}]
      """;

  @Test
  void localYamlGrantsPermitAcrossFiles() throws Exception {
    MeshYaml.write(dir, "route.yaml", ROUTE);
    assertEquals(List.of(true, false), permitted(ConfigLoader.load(dir).httpRoutes().get(0)));
    MeshYaml.write(
        dir,
        "grant.yaml",
        """
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: ReferenceGrant
        metadata: {name: from-a, namespace: b}
        spec:
          from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]
          to: [{group: "", kind: Service, name: db}]
        """);
    assertEquals(List.of(true, true), permitted(ConfigLoader.load(dir).httpRoutes().get(0)));
    ConfigLoader.FileContent file = ConfigLoader.loadFile(dir.resolve("grant.yaml"));
    assertEquals(
        List.of(
            new ReferenceGrant(
                "b",
                "from-a",
                List.of(new ReferenceGrant.From(ReferenceGrant.GATEWAY_GROUP, "HTTPRoute", "a")),
                List.of(new ReferenceGrant.To("", "Service", "db")))),
        file.of(ResourceKinds.REFERENCE_GRANTS));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{to: [{group: \"\", kind: Service}]}| spec.from: at least one entry is required",
        "{from: [], to: [{group: \"\", kind: Service}]}| spec.from: at least one entry is required",
        "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute}], to: [{group: \"\", kind:"
            + " Service}]}| spec.from[0].namespace: is required",
        "{from: [{kind: HTTPRoute, namespace: a}], to: [{group: \"\", kind: Service}]}|"
            + " spec.from[0].group: is required",
        "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}], to: [{group:"
            + " \"\", kind: Service, name: \"\"}]}| spec.to[0].name: must not be empty",
        "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}], to: [{group:"
            + " \"\", kind: Service, port: 80}]}| spec.to[0].port: unknown field",
        "{from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]}|"
            + " spec.to: at least one entry is required",
      })
  void badGrantsAreRefusedWhole(String spec, String expected) throws Exception {
    MeshYaml.write(dir, "route.yaml", ROUTE);
    MeshYaml.write(
        dir,
        "g.yaml",
        "apiVersion: gateway.networking.k8s.io/v1beta1\nkind: ReferenceGrant\n"
            + "metadata: {name: g, namespace: b}\nspec: "
            + spec
            + "\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("g.yaml: ReferenceGrant b/g: " + expected),
        e.errors().toString());
  }

  @Test
  void duplicateGrantsAreRefused() throws Exception {
    String g =
        """
        apiVersion: gateway.networking.k8s.io/v1beta1
        kind: ReferenceGrant
        metadata: {name: g, namespace: b}
        spec:
          from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: a}]
          to: [{group: "", kind: Service}]
        """;
    MeshYaml.write(dir, "a.yaml", g);
    MeshYaml.write(dir, "b.yaml", g);
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(
        List.of(
            "b.yaml: ReferenceGrant b/g: metadata.name: duplicate of the ReferenceGrant in a.yaml"),
        e.errors());
  }
}
