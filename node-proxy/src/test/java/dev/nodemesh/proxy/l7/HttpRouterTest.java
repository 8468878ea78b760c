package dev.nodemesh.proxy.l7;

import static dev.nodemesh.model.testing.MeshYaml.docs;
import static dev.nodemesh.model.testing.MeshYaml.pod;
import static dev.nodemesh.model.testing.MeshYaml.service;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import dev.nodemesh.proxy.l7.resilience.TrafficState;
import dev.nodemesh.proxy.outbound.Route;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The L7 routing decision as a table over one YAML-built mesh; no sockets. */
class HttpRouterTest {
  private static final String PORTS = "[{name: http, port: 80, targetPort: 8080}]";
  private static ConfigSnapshot mesh;
  private static MeshService web;
  private static InetAddress vip;

  @BeforeAll
  static void load(@TempDir Path dir) throws Exception {
    MeshYaml.write(
        dir,
        "pods.yaml",
        docs(
            pod("default", "a-1", "10.1.0.11", "{app: web, track: a}", "[]"),
            pod("default", "b-1", "10.1.0.12", "{app: web, track: b}", "[]"),
            pod("default", "c-1", "10.1.0.13", "{app: web, track: c}", "[]")));
    MeshYaml.write(
        dir,
        "services.yaml",
        docs(
            service("default", "web", "[10.96.0.1]", "{app: web}", PORTS),
            service("default", "a", "[10.96.0.2]", "{track: a}", PORTS),
            service("default", "b", "[10.96.0.3]", "{track: b}", PORTS),
            service("default", "c", "[10.96.0.4]", "{track: c}", PORTS),
            service("default", "empty", "[10.96.0.5]", "{track: none}", PORTS),
            service("other", "x", "[10.96.0.6]", "{track: none}", PORTS)));
    MeshYaml.write(dir, "routes.yaml", ROUTES);
    mesh = ConfigLoader.load(dir);
    web = mesh.serviceByName(new NamespacedName("default", "web"));
    vip = InetAddress.getByName("10.96.0.1");
  }

  // Two routes on one Service: precedence is across both, not file order.
  private static final String ROUTES =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: z-general, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: web}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /api}}]
            backendRefs: [{name: a, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /api/v2}}]
            backendRefs: [{name: b, port: 80}]
          - matches: [{path: {type: RegularExpression, value: "/re/[0-9]+"}}]
            backendRefs: [{name: c, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /q}, queryParams: [{name: v, value: "2"}]}]
            backendRefs: [{name: b, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /q}}]
            backendRefs: [{name: a, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /gone}}]
            backendRefs: [{name: missing, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /badport}}]
            backendRefs: [{name: a, port: 81}]
          - matches: [{path: {type: PathPrefix, value: /none}}]
            backendRefs: [{name: empty, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /nobackend}}]
          - matches: [{path: {type: PathPrefix, value: /split}}]
            backendRefs: [{name: a, port: 80, weight: 3}, {name: b, port: 80, weight: 1}, {name: c, port: 80, weight: 0}]
          - matches: [{path: {type: PathPrefix, value: /far}}]
            backendRefs: [{name: a, port: 80, weight: 1}, {name: x, namespace: other, port: 80, weight: 2}]
          - matches: [{path: {type: PathPrefix, value: /moved}}]
            filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301}}]
            backendRefs: [{name: a, port: 80}]
      ---
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: a-specific, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: web, port: 80}]
        rules:
          - matches: [{path: {type: Exact, value: /api}}]
            backendRefs: [{name: c, port: 80}]
          - matches:
              - path: {type: PathPrefix, value: /api}
                headers: [{name: X-Canary, value: "yes"}]
            backendRefs: [{name: c, port: 80}]
          - matches: [{path: {type: PathPrefix, value: /api}, method: DELETE}]
            backendRefs: [{name: b, port: 80}]
          - matches:
              - path: {type: PathPrefix, value: /hdr}
                headers: [{name: x-user, type: RegularExpression, value: "adm.*"}]
            backendRefs: [{name: b, port: 80}]
      """;

  static Stream<Arguments> table() {
    return Stream.of(
        // method, path, header "name: value" or "", expected backend or outcome
        Arguments.of("GET", "/api", "", "c"), // Exact beats every prefix
        Arguments.of("GET", "/api/x", "", "a"),
        Arguments.of("GET", "/api/v2/x", "", "b"), // the longest prefix wins
        Arguments.of("GET", "/api/v2", "", "b"),
        Arguments.of("GET", "/apix", "", "404"), // prefixes match whole segments
        Arguments.of("GET", "/api/", "", "a"),
        Arguments.of("GET", "/api/x", "x-canary: yes", "c"), // header match wins over a plain one
        Arguments.of("GET", "/api/x", "x-canary: no", "a"),
        Arguments.of("DELETE", "/api/x", "", "b"), // a method match ranks above none
        Arguments.of("GET", "/re/123", "", "c"),
        Arguments.of("GET", "/re/12a", "", "404"), // a regex must match the whole path
        Arguments.of("GET", "/q?v=2", "", "b"), // a query match ranks above none
        Arguments.of("GET", "/q?v=3", "", "a"),
        Arguments.of("GET", "/q?v=2&v=3", "", "b"), // the first value counts
        Arguments.of("GET", "/hdr", "x-user: admin", "b"),
        Arguments.of("GET", "/hdr", "x-user: bob", "404"),
        Arguments.of("GET", "/gone", "", "500"),
        Arguments.of("GET", "/badport", "", "500"),
        Arguments.of("GET", "/nobackend", "", "500"),
        Arguments.of("GET", "/none", "", "503"),
        Arguments.of("GET", "/moved/x", "", "redirect 301"), // its backends are not used
        Arguments.of("GET", "/elsewhere", "", "404"));
  }

  @ParameterizedTest(name = "{0} {1} [{2}] -> {3}")
  @MethodSource("table")
  void routes(String method, String path, String header, String expected) {
    HttpHeaders h = new DefaultHttpHeaders();
    if (!header.isEmpty()) {
      String[] kv = header.split(": ", 2);
      h.set(kv[0], kv[1]);
    }
    assertEquals(expected, outcome(route(method, path, h, bound -> 0)));
  }

  @Test
  void weightsSplitTrafficExactlyOverTheRandomRange() {
    Map<String, Integer> counts = new HashMap<>();
    // weights 3:1:0 over [0, 4): every value of the random source once.
    for (int r = 0; r < 4; r++) {
      int value = r;
      counts.merge(
          outcome(route("GET", "/split", new DefaultHttpHeaders(), bound -> value)),
          1,
          Integer::sum);
    }
    assertEquals(Map.of("a", 3, "b", 1), counts);
  }

  @Test
  void aBackendNoReferenceGrantPermitsGetsItsShareAs500() {
    Map<String, Integer> counts = new HashMap<>();
    // weights 1:2 over [0, 3); other/x exists but no ReferenceGrant in other permits it.
    for (int r = 0; r < 3; r++) {
      int value = r;
      counts.merge(
          outcome(route("GET", "/far", new DefaultHttpHeaders(), bound -> value)), 1, Integer::sum);
    }
    assertEquals(Map.of("a", 1, "500", 2), counts);
  }

  @Test
  void portOfAnotherServicePortIsNotRouted() {
    HttpRouter.Decision d =
        HttpRouter.route(
            mesh, "default", web, 8443, "GET", "/api", new DefaultHttpHeaders(), b -> 0);
    // z-general covers every port, a-specific only 80: /api on 8443 is z-general's prefix rule.
    assertEquals("a", outcome(d));
  }

  @Test
  void rewritesReplaceThePrefixOrTheWholePath() throws Exception {
    HttpRouteEntry prefix = entry("/api", "{type: ReplacePrefixMatch, replacePrefixMatch: /v1}");
    assertEquals("/v1/items?x=1", HttpRouter.rewritePath(prefix, "/api/items?x=1"));
    assertEquals("/v1", HttpRouter.rewritePath(prefix, "/api"));
    HttpRouteEntry root = entry("/api", "{type: ReplacePrefixMatch, replacePrefixMatch: /}");
    assertEquals("/items", HttpRouter.rewritePath(root, "/api/items"));
    HttpRouteEntry full = entry("/api", "{type: ReplaceFullPath, replaceFullPath: /fixed}");
    assertEquals("/fixed?q=2", HttpRouter.rewritePath(full, "/api/x/y?q=2"));
  }

  private static HttpRouteEntry entry(String prefix, String rewrite) throws Exception {
    return ruleEntry(
        prefix, "filters: [{type: URLRewrite, urlRewrite: {path: %s}}]".formatted(rewrite));
  }

  /** The one entry of a route on web with a PathPrefix {@code prefix} rule and {@code filters}. */
  private static HttpRouteEntry ruleEntry(String prefix, String filters) throws Exception {
    Path dir = java.nio.file.Files.createTempDirectory("rw");
    try {
      MeshYaml.write(
          dir,
          "r.yaml",
          """
          apiVersion: gateway.networking.k8s.io/v1
          kind: HTTPRoute
          metadata: {name: r}
          spec:
            parentRefs: [{kind: Service, name: web}]
            rules:
              - matches: [{path: {type: PathPrefix, value: %s}}]
                %s
          """
              .formatted(prefix, filters));
      return ConfigLoader.load(dir).httpRoutes(new NamespacedName("default", "web")).get(0);
    } finally {
      java.nio.file.Files.delete(dir.resolve("r.yaml"));
      java.nio.file.Files.delete(dir);
    }
  }

  private static HttpRouter.Decision route(
      String method, String path, HttpHeaders h, java.util.function.IntUnaryOperator random) {
    return HttpRouter.route(mesh, "default", web, 80, method, path, h, random);
  }

  /**
   * The backend a request goes to, or the status the proxy answers: the router's decision, then the
   * endpoint pick (a backend without a usable endpoint is 503).
   */
  private static String outcome(HttpRouter.Decision d) {
    if (d instanceof HttpRouter.ToBackend b) {
      ServiceTraffic st =
          new TrafficState(new SimpleMeterRegistry(), () -> 0L).service(b.service().id(), null);
      Route.ToService t =
          EndpointPicker.pick(
              mesh, b.service(), b.port(), vip, st, null, 0, null, new SplittableRandom(1));
      return t == null ? "503" : t.service().name();
    }
    if (d instanceof HttpRouter.NoMatch) {
      return "404";
    }
    if (d instanceof HttpRouter.BadBackend) {
      return "500";
    }
    if (d instanceof HttpRouter.Redirected r) {
      return "redirect " + r.redirect().statusCode();
    }
    return "503";
  }

  static Stream<Arguments> redirects() {
    String prefix = "path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}";
    return Stream.of(
        // filter, request target, Host, dialled port, Location
        Arguments.of("{}", "/old/a?x=1", "web", 80, "http://web/old/a?x=1"),
        Arguments.of("{}", "/old", "web:80", 8080, "http://web:8080/old"), // the listener port
        Arguments.of("{}", "/old", null, 80, "http://web/old"), // no Host: the Service's name
        Arguments.of("{}", "/old", "bad host", 80, "http://web/old"),
        Arguments.of("{}", "/old", "[fd00::1]:80", 80, "http://[fd00::1]/old"),
        Arguments.of("{hostname: example.org}", "/old", "web", 80, "http://example.org/old"),
        Arguments.of("{port: 8083}", "/old", "web", 80, "http://web:8083/old"),
        Arguments.of("{port: 80}", "/old", "web", 8080, "http://web/old"),
        Arguments.of("{scheme: https}", "/old", "web:8080", 8080, "https://web/old"),
        Arguments.of("{scheme: https, port: 8443}", "/old", "web", 80, "https://web:8443/old"),
        Arguments.of("{scheme: http}", "/old", "web", 8080, "http://web/old"),
        Arguments.of("{" + prefix + "}", "/old/a/b?q", "web", 80, "http://web/new/a/b?q"),
        Arguments.of("{" + prefix + "}", "/old", "web", 80, "http://web/new"),
        Arguments.of(
            "{path: {type: ReplaceFullPath, replaceFullPath: /all}}",
            "/old/a",
            "web",
            80,
            "http://web/all"),
        Arguments.of(
            "{scheme: https, hostname: example.org, port: 444, " + prefix + "}",
            "/old/z",
            "web",
            80,
            "https://example.org:444/new/z"));
  }

  @ParameterizedTest(name = "{0} {1} Host {2} port {3} -> {4}")
  @MethodSource("redirects")
  void redirectsBuildTheirLocationFromTheRequest(
      String filter, String target, String host, int port, String location) throws Exception {
    HttpRouteEntry e =
        ruleEntry(
            "/old", "filters: [{type: RequestRedirect, requestRedirect: %s}]".formatted(filter));
    HttpRoute.Redirect rd = e.rule().redirect();
    assertEquals(location, HttpRouter.redirectLocation(e, rd, target, host, "web", port));
  }
}
