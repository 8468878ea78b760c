package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** HTTPRoutes in the YAML directory: what is read, what is defaulted, what is refused and how. */
class HttpRouteConfigTest {
  @TempDir Path dir;

  private static final String FULL =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata:
        name: web
        namespace: shop
        creationTimestamp: "2026-01-02T03:04:05Z"
        annotations: {nodemesh.dev/retry-non-idempotent: "true"}
      spec:
        parentRefs:
          - {group: "", kind: Service, name: web, port: 80}
          - {name: some-gateway}
        rules:
          - matches:
              - path: {type: Exact, value: /a}
                headers: [{name: X-Env, value: prod}]
                queryParams: [{type: RegularExpression, name: id, value: "[0-9]+"}]
                method: PUT
            filters:
              - type: RequestHeaderModifier
                requestHeaderModifier:
                  set: [{name: X-A, value: "1"}]
                  add: [{name: x-b, value: "2"}]
                  remove: [X-C]
              - type: URLRewrite
                urlRewrite: {hostname: other, path: {type: ReplaceFullPath, replaceFullPath: /b}}
            backendRefs:
              - {name: web-v1, port: 8080, weight: 90}
              - {name: web-v2, namespace: canary, port: 8080, weight: 10}
            timeouts: {request: 1m30s, backendRequest: 250ms}
            retry: {codes: [502, 503], attempts: 3, backoff: 10ms}
          - backendRefs: [{name: web-v1, port: 8080}]
      """;

  @Test
  void readsEveryFieldAndDefaultsTheRest() throws Exception {
    MeshYaml.write(dir, "routes.yaml", FULL);
    ConfigSnapshot s = ConfigLoader.load(dir);
    HttpRoute r = s.httpRoutes().get(0);
    assertEquals(new NamespacedName("shop", "web"), r.id());
    // The Gateway parentRef is not ours and is left out.
    assertEquals(List.of(new HttpRoute.Parent(new NamespacedName("shop", "web"), 80)), r.parents());
    assertTrue(r.retryNonIdempotent());
    assertEquals(1767323045L, r.createdEpochSeconds());
    HttpRoute.Rule rule = r.rules().get(0);
    HttpRoute.Match m = rule.matches().get(0);
    assertEquals(new TextMatch(TextMatch.Kind.EXACT, "", "/a"), m.path());
    assertEquals(List.of(new TextMatch(TextMatch.Kind.EXACT, "x-env", "prod")), m.headers());
    assertTrue(m.queryParams().get(0).matches("42"));
    assertEquals("PUT", m.method());
    assertEquals(
        new HttpRoute.HeaderModifier(Map.of("x-a", "1"), Map.of("x-b", "2"), Set.of("x-c")),
        rule.requestHeaders());
    assertEquals(new HttpRoute.Rewrite("other", "/b", null), rule.rewrite());
    assertEquals(
        List.of(
            new HttpRoute.Backend(new NamespacedName("shop", "web-v1"), 8080, 90),
            // In another namespace and no ReferenceGrant there: kept with its weight, refused.
            new HttpRoute.Backend(new NamespacedName("canary", "web-v2"), 8080, 10, false)),
        rule.backends());
    assertEquals(Duration.ofSeconds(90), rule.requestTimeout());
    assertEquals(Duration.ofMillis(250), rule.backendTimeout());
    assertEquals(new HttpRoute.Retry(3, Set.of(502, 503), Duration.ofMillis(10)), rule.retry());
    HttpRoute.Rule fallback = r.rules().get(1);
    assertEquals(List.of(HttpRoute.Match.everything()), fallback.matches());
    assertNull(fallback.retry());
    assertTrue(s.hasHttpRoute(new NamespacedName("shop", "web"), 80));
    assertTrue(!s.hasHttpRoute(new NamespacedName("shop", "web"), 81));
    // Equal content, equal snapshots: a reload of the same files is not a change.
    assertTrue(s.sameContent(ConfigLoader.load(dir)));
  }

  @Test
  void aRouteForAGatewayOnlyIsIgnored() throws Exception {
    MeshYaml.write(
        dir,
        "gw.yaml",
        """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: edge}
        spec:
          parentRefs: [{name: my-gateway}]
        """);
    assertEquals(List.of(), ConfigLoader.load(dir).httpRoutes());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "path: {type: Prefix, value: /a}| spec.rules[0].matches[0].path.type: \"Prefix\" is not"
            + " Exact, PathPrefix or RegularExpression",
        "path: {type: PathPrefix, value: a}| spec.rules[0].matches[0].path.value: \"a\" must start"
            + " with \"/\"",
        "path: {type: RegularExpression, value: \"(\"}| spec.rules[0].matches[0].path.value: \"(\""
            + " is not a valid regular expression",
        // RE2 has no lookaround (nor backreferences): refused when the config is validated.
        "path: {type: RegularExpression, value: \"/(?=a)\"}|"
            + " spec.rules[0].matches[0].path.value: \"/(?=a)\" is not a valid regular expression",
        "method: FETCH| spec.rules[0].matches[0].method: \"FETCH\" is not an HTTP method",
        "headers: [{name: \"bad header\", value: x}]| spec.rules[0].matches[0].headers[0].name:"
            + " \"bad header\" is not a valid name",
      })
  void badMatchesNameFileObjectAndField(String match, String expected) throws Exception {
    MeshYaml.write(
        dir, "r.yaml", route("matches: [{" + match + "}]\n    backendRefs: [{name: b, port: 80}]"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("r.yaml: HTTPRoute default/r: " + expected),
        e.errors().toString());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "backendRefs: [{name: b}]| spec.rules[0].backendRefs[0].port: is required",
        "backendRefs: [{name: b, port: 80, kind: Pod}]| spec.rules[0].backendRefs[0].kind: only"
            + " Service backends",
        "backendRefs: [{name: b, port: 80, weight: -1}]| spec.rules[0].backendRefs[0].weight:",
        "filters: [{type: RequestMirror}]| spec.rules[0].filters[0].requestMirror: is required",
        "filters: [{type: CORS}]| spec.rules[0].filters[0].type: \"CORS\" is not supported",
        "filters: [{type: ExtensionRef, extensionRef: {group: x.io, kind: Foo, name: f}}]|"
            + " spec.rules[0].filters[0].extensionRef: only group traffic.nodemesh.dev, kind"
            + " HTTPFault",
        "filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent:"
            + " 101}}]| spec.rules[0].filters[0].requestMirror.percent: \"101\" is not an integer",
        "timeouts: {request: 10}| spec.rules[0].timeouts.request: \"10\" is not a Gateway API"
            + " duration",
        "timeouts: {request: 1s, backendRequest: 2s}| spec.rules[0].timeouts.backendRequest: must"
            + " not be longer",
        "retry: {codes: [200]}| spec.rules[0].retry.codes[0]: \"200\" is not a code in 400-599",
        "retry: {attempts: 99}| spec.rules[0].retry.attempts: \"99\" is not an integer in 0-10",
        "filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: a, value:"
            + " \"x\\ny\"}]}}]| spec.rules[0].filters[0].requestHeaderModifier.set[0].value: must not"
            + " contain CR or LF",
      })
  void badRulesNameTheField(String rule, String expected) throws Exception {
    MeshYaml.write(dir, "r.yaml", route(rule));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("r.yaml: HTTPRoute default/r: " + expected),
        e.errors().toString());
  }

  @Test
  void readsRequestRedirectsWithGatewayApiDefaults() throws Exception {
    MeshYaml.write(
        dir,
        "r.yaml",
        route(
            """
            matches: [{path: {type: PathPrefix, value: /old}}]
                filters:
                  - type: RequestRedirect
                    requestRedirect:
                      scheme: https
                      hostname: example.org
                      port: 8443
                      statusCode: 308
                      path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}
              - matches: [{path: {type: Exact, value: /moved}}]
                filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /here}}}]
                backendRefs: [{name: b, port: 80}]
              - filters: [{type: RequestRedirect, requestRedirect: {}}]
            """
                .stripTrailing()));
    List<HttpRoute.Rule> rules = ConfigLoader.load(dir).httpRoutes().get(0).rules();
    assertEquals(
        new HttpRoute.Redirect("https", "example.org", null, "/new", 8443, 308),
        rules.get(0).redirect());
    // A redirect rule may list backends (Gateway API allows it); they are not used.
    assertEquals(
        new HttpRoute.Redirect(null, null, "/here", null, 0, 302), rules.get(1).redirect());
    assertEquals(1, rules.get(1).backends().size());
    // Every part omitted: the same URL, 302.
    assertEquals(new HttpRoute.Redirect(null, null, null, null, 0, 302), rules.get(2).redirect());
  }

  @Test
  void readsBackendRefHeaderModifiers() throws Exception {
    MeshYaml.write(
        dir,
        "r.yaml",
        route(
            """
            backendRefs:
                  - name: b
                    port: 80
                    filters:
                      - type: RequestHeaderModifier
                        requestHeaderModifier: {set: [{name: X-To, value: b}], remove: [X-Drop]}
                      - type: ResponseHeaderModifier
                        responseHeaderModifier: {add: [{name: X-From, value: b}]}
                  - {name: c, port: 80}
            """
                .stripTrailing()));
    List<HttpRoute.Backend> backends =
        ConfigLoader.load(dir).httpRoutes().get(0).rules().get(0).backends();
    assertEquals(
        new HttpRoute.HeaderModifier(Map.of("x-to", "b"), Map.of(), Set.of("x-drop")),
        backends.get(0).requestHeaders());
    assertEquals(
        new HttpRoute.HeaderModifier(Map.of(), Map.of("x-from", "b"), Set.of()),
        backends.get(0).responseHeaders());
    assertEquals(HttpRoute.HeaderModifier.NONE, backends.get(1).requestHeaders());
    assertEquals(HttpRoute.HeaderModifier.NONE, backends.get(1).responseHeaders());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "{scheme: ftp}| spec.rules[0].filters[0].requestRedirect.scheme: \"ftp\" is not http or"
            + " https",
        "{hostname: \"*.example.org\"}| spec.rules[0].filters[0].requestRedirect.hostname:"
            + " \"*.example.org\" is not a hostname",
        "{hostname: \"Example.org\"}| spec.rules[0].filters[0].requestRedirect.hostname:",
        "{port: 0}| spec.rules[0].filters[0].requestRedirect.port: 0 is out of range 1-65535",
        "{port: http}| spec.rules[0].filters[0].requestRedirect.port: \"http\" is not an integer",
        "{statusCode: 304}| spec.rules[0].filters[0].requestRedirect.statusCode: \"304\" is not"
            + " 301, 302, 303, 307 or 308",
        "{path: {type: ReplaceFullPath}}| spec.rules[0].filters[0].requestRedirect.path"
            + ".replaceFullPath: is required and must be a path",
        "{path: {type: ReplaceFullPath, replaceFullPath: \"/a b\"}}|"
            + " spec.rules[0].filters[0].requestRedirect.path.replaceFullPath: is required",
        "{path: {type: ReplacePrefixMatch, replacePrefixMatch: x}}|"
            + " spec.rules[0].filters[0].requestRedirect.path.replacePrefixMatch: is required",
        "{path: {type: Replace, replaceFullPath: /x}}|"
            + " spec.rules[0].filters[0].requestRedirect.path.type: \"Replace\" is not"
            + " ReplaceFullPath or ReplacePrefixMatch",
      })
  void badRedirectsNameTheField(String redirect, String expected) throws Exception {
    MeshYaml.write(
        dir,
        "r.yaml",
        route("filters: [{type: RequestRedirect, requestRedirect: " + redirect + "}]"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("r.yaml: HTTPRoute default/r: " + expected),
        e.errors().toString());
  }

  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        "filters: [{type: RequestRedirect}]| spec.rules[0].filters[0].requestRedirect: is required",
        "filters: [{type: URLRewrite, urlRewrite: {hostname: a}}, {type: RequestRedirect,"
            + " requestRedirect: {hostname: b}}]| spec.rules[0].filters[1].type: RequestRedirect and"
            + " URLRewrite cannot be in one rule",
        "filters: [{type: RequestRedirect, requestRedirect: {hostname: b}}, {type: URLRewrite,"
            + " urlRewrite: {hostname: a}}]| spec.rules[0].filters[1].type: RequestRedirect and"
            + " URLRewrite cannot be in one rule",
        "backendRefs: [{name: b, port: 80, filters: [{type: RequestHeaderModifier}]}]|"
            + " spec.rules[0].backendRefs[0].filters[0].requestHeaderModifier: is required",
        "backendRefs: [{name: b, port: 80, filters: [{type: ResponseHeaderModifier,"
            + " responseHeaderModifier: {set: [{name: \"a b\", value: x}]}}]}]|"
            + " spec.rules[0].backendRefs[0].filters[0].responseHeaderModifier.set[0].name: \"a b\""
            + " is not a valid header name",
        "backendRefs: [{name: b, port: 80, filters: [{type: RequestHeaderModifier,"
            + " requestHeaderModifier: {}}, {type: RequestHeaderModifier, requestHeaderModifier:"
            + " {}}]}]| spec.rules[0].backendRefs[0].filters[1].type: \"RequestHeaderModifier\" is"
            + " given twice",
      })
  void badRedirectRulesAndBackendFiltersNameTheField(String rule, String expected)
      throws Exception {
    MeshYaml.write(dir, "r.yaml", route(rule));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertTrue(
        e.errors().get(0).startsWith("r.yaml: HTTPRoute default/r: " + expected),
        e.errors().toString());
  }

  @Test
  void duplicateRouteNamesAreRefused() throws Exception {
    MeshYaml.write(dir, "a.yaml", route("backendRefs: [{name: b, port: 80}]"));
    MeshYaml.write(dir, "b.yaml", route("backendRefs: [{name: b, port: 80}]"));
    ConfigException e = assertThrows(ConfigException.class, () -> ConfigLoader.load(dir));
    assertEquals(
        List.of("b.yaml: HTTPRoute default/r: metadata.name: duplicate of the HTTPRoute in a.yaml"),
        e.errors());
  }

  private static String route(String rule) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: r}
        spec:
          parentRefs: [{kind: Service, name: web}]
          rules:
          - %s
        """
        .formatted(rule);
  }
}
