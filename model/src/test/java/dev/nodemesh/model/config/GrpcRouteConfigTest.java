package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GRPCRoutes, HTTPFaults, mirrors and L7 policy fields in the YAML directory. */
class GrpcRouteConfigTest {
  @TempDir Path dir;

  private static final String ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: GRPCRoute
      metadata: {name: echo, namespace: shop}
      spec:
        parentRefs: [{group: "", kind: Service, name: echo, port: 9090}]
        rules:
          - matches:
              - method: {service: pkg.Echo, method: Say}
              - method: {service: pkg.Echo}
                headers: [{name: X-Canary, value: "yes"}]
              - method: {method: Say}
              - method: {type: RegularExpression, service: "pkg\\\\..*", method: "S.*"}
            filters:
              - type: ExtensionRef
                extensionRef: {group: traffic.nodemesh.dev, kind: HTTPFault, name: f}
              - type: RequestMirror
                requestMirror: {backendRef: {name: shadow, port: 9090}, percent: 50}
            backendRefs:
              - {name: echo-v1, port: 9090, weight: 3}
      ---
      apiVersion: traffic.nodemesh.dev/v1alpha1
      kind: HTTPFault
      metadata: {name: f, namespace: shop}
      spec:
        delay: {fixedDelay: 250ms, percentage: 12.5}
        abort: {grpcStatus: 14, percentage: 1}
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: echo, namespace: shop}
      spec:
        parentRefs: [{kind: Service, name: other}]
      """;

  @Test
  void readsGrpcRouteAsPathMatchesAndFault() throws Exception {
    MeshYaml.write(dir, "r.yaml", ROUTE);
    ConfigSnapshot s = ConfigLoader.load(dir);
    assertEquals(2, s.httpRoutes().size(), "an HTTPRoute may share the GRPCRoute's name");
    HttpRoute g = s.httpRoutes().stream().filter(HttpRoute::grpc).findFirst().orElseThrow();
    assertEquals("GRPCRoute", g.kind());
    HttpRoute.Rule rule = g.rules().get(0);
    List<HttpRoute.Match> m = rule.matches();
    assertEquals(new TextMatch(TextMatch.Kind.EXACT, "", "/pkg.Echo/Say"), m.get(0).path());
    assertEquals(new TextMatch(TextMatch.Kind.PATH_PREFIX, "", "/pkg.Echo"), m.get(1).path());
    assertEquals(
        List.of(new TextMatch(TextMatch.Kind.EXACT, "x-canary", "yes")), m.get(1).headers());
    assertTrue(m.get(2).path().matches("/any.Svc/Say"));
    assertTrue(!m.get(2).path().matches("/any.Svc/Sayx"));
    assertTrue(m.get(3).path().matches("/pkg.Echo/Shout"));
    assertTrue(!m.get(3).path().matches("/other.Echo/Shout"));
    assertTrue(m.get(1).path().matches("/pkg.Echo/Anything"));
    assertTrue(!m.get(1).path().matches("/pkg.EchoX/Anything"));
    assertEquals(new NamespacedName("shop", "f"), rule.fault());
    assertEquals(
        new HttpRoute.Mirror(new NamespacedName("shop", "shadow"), 9090, 50), rule.mirror());
    HttpFault f = s.httpFault(new NamespacedName("shop", "f"));
    assertEquals(
        new HttpFault(
            "f",
            "shop",
            new HttpFault.Delay(Duration.ofMillis(250), 125_000),
            new HttpFault.Abort(200, 14, 10_000)),
        f);
  }

  @Test
  void aFaultDelayMayHaveMicroseconds() throws Exception {
    MeshYaml.write(
        dir,
        "f.yaml",
        "apiVersion: traffic.nodemesh.dev/v1alpha1\nkind: HTTPFault\nmetadata: {name: f}\n"
            + "spec: {delay: {fixedDelay: 1ms250us, percentage: 100}}\n"
            + "---\n"
            + "apiVersion: traffic.nodemesh.dev/v1alpha1\nkind: HTTPFault\nmetadata: {name: g}\n"
            + "spec: {delay: {fixedDelay: 400us, percentage: 100}}\n");
    ConfigSnapshot s = ConfigLoader.load(dir);
    assertEquals(
        Duration.ofNanos(1_250_000),
        s.httpFault(new NamespacedName("default", "f")).delay().fixed());
    assertEquals(
        Duration.ofNanos(400_000), s.httpFault(new NamespacedName("default", "g")).delay().fixed());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "{abort: {httpStatus: 503, grpcStatus: 14}}| spec.abort: exactly one of httpStatus and"
            + " grpcStatus",
        "{abort: {grpcStatus: NOPE}}| spec.abort.grpcStatus: \"NOPE\" is not a gRPC status",
        "{abort: {grpcStatus: 0}}| spec.abort.grpcStatus: \"0\" is not a gRPC status",
        "{abort: {httpStatus: 700}}| spec.abort.httpStatus: \"700\" is not an integer in 200-599",
        "{abort: {httpStatus: 503, percentage: 101}}| spec.abort.percentage: \"101\" is not a"
            + " number in 0-100",
        "{delay: {percentage: 5}}| spec.delay.fixedDelay: is required",
        "{delay: {fixedDelay: 1.5ms}}| spec.delay.fixedDelay: \"1.5ms\" is not a duration",
        "{delay: {fixedDelay: 5ns}}| spec.delay.fixedDelay: \"5ns\" is not a duration",
        "{delay: {fixedDelay: 1s, percent: 5}}| spec.delay.percent: unknown field",
        "{}| spec: is empty",
      })
  void badFaultsNameTheField(String spec, String expected) throws Exception {
    MeshYaml.write(
        dir,
        "f.yaml",
        "apiVersion: traffic.nodemesh.dev/v1alpha1\nkind: HTTPFault\nmetadata: {name: f}\nspec: "
            + spec
            + "\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("f.yaml: HTTPFault default/f: " + expected),
        e.errors().toString());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "matches: [{method: {type: Prefix, service: a}}]| spec.rules[0].matches[0].method.type:"
            + " \"Prefix\" is not Exact or RegularExpression",
        "matches: [{method: {type: Exact}}]| spec.rules[0].matches[0].method: service or method is"
            + " required",
        "matches: [{method: {service: \"a/b\"}}]| spec.rules[0].matches[0].method: an Exact"
            + " service",
        "matches: [{method: {type: RegularExpression, service: \"(\"}}]|"
            + " spec.rules[0].matches[0].method: not a valid regular expression",
        "filters: [{type: URLRewrite, urlRewrite: {}}]| spec.rules[0].filters[0].type: URLRewrite"
            + " is not a GRPCRoute filter",
      })
  void badGrpcRulesNameTheField(String rule, String expected) throws Exception {
    MeshYaml.write(
        dir,
        "r.yaml",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: GRPCRoute\nmetadata: {name: r}\n"
            + "spec:\n  parentRefs: [{kind: Service, name: s}]\n  rules:\n  - "
            + rule
            + "\n");
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("r.yaml: GRPCRoute default/r: " + expected),
        e.errors().toString());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "{methods: [get]}| spec.rules[0].to[0].methods[0]: \"get\" is not an HTTP method",
        "{paths: [api]}| spec.rules[0].to[0].paths[0]: \"api\" must start with",
        "{paths: [\"/a*b*\"]}| spec.rules[0].to[0].paths[0]: \"/a*b*\": '*' may only be",
        "{headers: {x-a: \"\"}}| spec.rules[0].to[0].headers.x-a: must not be empty",
        "{header: {x-a: b}}| spec.rules[0].to[0].header: unknown field",
      })
  void badL7OperationsNameTheField(String to, String expected) throws Exception {
    MeshYaml.write(
        dir,
        "p.yaml",
        MeshYaml.authorizationPolicy("default", "p", "{rules: [{to: [" + to + "]}]}"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("p.yaml: AuthorizationPolicy default/p: " + expected),
        e.errors().toString());
  }
}
