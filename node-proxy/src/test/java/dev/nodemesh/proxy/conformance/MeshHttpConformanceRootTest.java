package dev.nodemesh.proxy.conformance;

import static dev.nodemesh.proxy.conformance.ConformanceMesh.eventually;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.conformance.ConformanceMesh.Reply;
import dev.nodemesh.proxy.testing.Interception;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.DisplayName;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.AfterParameterizedClassInvocation;
import org.junit.jupiter.params.BeforeParameterizedClassInvocation;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The Gateway API conformance tests of the MESH-HTTP profile (core: SupportMesh + SupportHTTPRoute;
 * extended: the features each names), one test per conformance test, named as upstream ({@code
 * conformance/tests/mesh/*.go} of kubernetes-sigs/gateway-api): the same routes' intent and the
 * same expected answers, sent from a pod of the mesh namespace through node-1's proxy to echo pods
 * on both nodes (see {@link ConformanceMesh} for the set-up and where it differs from the suite's).
 * A test of a feature nodemesh lacks would be {@code @Disabled} with the reason, its assertions
 * kept; none is now.
 *
 * <p>Both interception modes, one mesh per mode for the whole class: each test applies its manifest
 * (waiting until both proxies hold exactly its routes), and the routes are removed after it.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class MeshHttpConformanceRootTest {
  private static final String NS = ConformanceMesh.NS;

  /** Also handed to the static set-up, which builds one mesh per mode. */
  @Parameter Interception mode;

  @TempDir static Path tmp;
  private static ConformanceMesh mesh;

  /** One mesh per interception mode, shared by that mode's tests. */
  @BeforeParameterizedClassInvocation
  static void start(Interception mode) throws Exception {
    mesh = ConformanceMesh.start(tmp.resolve(mode.name()), mode);
  }

  @AfterParameterizedClassInvocation
  static void stop() throws Exception {
    if (mesh != null) {
      mesh.close();
      mesh = null;
    }
  }

  @AfterEach
  void removeRoutes() throws Exception {
    mesh.apply("");
  }

  /** A route of {@code namespace} with parentRef {@code parent} and the given rules. */
  private static String route(String name, String namespace, String parentRef, String rules) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata:
          name: %s
          namespace: %s
        spec:
          parentRefs:
            - %s
          rules:
        %s
        ---
        """
        .formatted(name, namespace, parentRef, rules.stripTrailing().indent(4).stripTrailing());
  }

  private static String echoRoute(String name, String rules) {
    return route(name, NS, "{group: \"\", kind: Service, name: echo, port: 80}", rules);
  }

  private Reply get(String target, String path) throws Exception {
    return mesh.send("client", target, path);
  }

  private Reply get(String path, Map<String, String> headers) throws Exception {
    return mesh.send("client", "echo", "echo", path, headers);
  }

  private static void expectBackend(Reply r, String pod) {
    assertEquals(200, r.status(), r.toString());
    assertEquals(pod, r.pod(), r.toString());
  }

  // ---------------------------------------------------------------- MESH-HTTP core

  @Test
  @DisplayName("MeshBasic")
  void meshBasic() throws Exception {
    mesh.apply("");
    eventually(() -> assertEquals(200, get("echo", "/").status()));
  }

  @Test
  @DisplayName("MeshHTTPRouteSimpleSameNamespace")
  void meshHttpRouteSimpleSameNamespace() throws Exception {
    mesh.apply(echoRoute("simple-same-namespace", "- backendRefs: [{name: echo-v1, port: 8080}]"));
    eventually(() -> expectBackend(get("echo", "/"), "echo-v1"));
  }

  @Test
  @DisplayName("MeshHTTPRouteMatching")
  void meshHttpRouteMatching() throws Exception {
    mesh.apply(
        echoRoute(
            "matching",
            """
            - matches:
                - path: {type: PathPrefix, value: /}
                - headers: [{name: version, value: one}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches:
                - path: {type: PathPrefix, value: /v2}
                - headers: [{name: version, value: two}]
              backendRefs: [{name: echo-v2, port: 8080}]
            """));
    Map<String, String> none = Map.of();
    Object[][] cases = {
      {"/", none, "echo-v1"},
      {"/example", none, "echo-v1"},
      {"/", Map.of("Version", "one"), "echo-v1"},
      {"/v2", none, "echo-v2"},
      {"/v2/example", none, "echo-v2"},
      {"/", Map.of("Version", "two"), "echo-v2"},
      {"/v2/", none, "echo-v2"},
      {"/v2example", none, "echo-v1"},
      {"/foo/v2/example", none, "echo-v1"},
    };
    for (Object[] c : cases) {
      @SuppressWarnings("unchecked")
      Map<String, String> h = (Map<String, String>) c[1];
      eventually(() -> expectBackend(get((String) c[0], h), (String) c[2]));
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteRequestHeaderModifier")
  void meshHttpRouteRequestHeaderModifier() throws Exception {
    mesh.apply(echoRoute("request-header-modifier", headerModifierRules(false)));
    checkRequestHeaderModifier();
  }

  /** The header-modifier rules, on the rule ({@code perBackend} false) or on its backendRef. */
  private static String headerModifierRules(boolean perBackend) {
    String[][] rules = {
      {"/set", "set: [{name: X-Header-Set, value: set-overwrites-values}]"},
      {"/add", "add: [{name: X-Header-Add, value: add-appends-values}]"},
      {"/remove", "remove: [X-Header-Remove]"},
      {
        "/multiple",
        "set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value:"
            + " header-set-2}]\n"
            + "add: [{name: X-Header-Add-1, value: header-add-1}, {name: X-Header-Add-2, value:"
            + " header-add-2}, {name: X-Header-Add-3, value: header-add-3}]\n"
            + "remove: [X-Header-Remove-1, X-Header-Remove-2]"
      },
      {
        "/case-insensitivity",
        "set: [{name: X-Header-Set, value: header-set}]\n"
            + "add: [{name: X-Header-Add, value: header-add}]\n"
            + "remove: [X-Header-Remove]"
      },
    };
    StringBuilder sb = new StringBuilder();
    for (String[] r : rules) {
      String filter =
          "filters:\n  - type: RequestHeaderModifier\n    requestHeaderModifier:\n"
              + r[1].indent(6);
      sb.append("- matches: [{path: {type: PathPrefix, value: ").append(r[0]).append("}}]\n");
      if (perBackend) {
        sb.append("  backendRefs:\n    - name: echo-v1\n      port: 8080\n");
        sb.append(filter.indent(6));
      } else {
        sb.append(filter.indent(2));
        sb.append("  backendRefs: [{name: echo-v1, port: 8080}]\n");
      }
    }
    return sb.toString();
  }

  private void checkRequestHeaderModifier() throws Exception {
    record Case(
        String path, Map<String, String> sent, Map<String, String> want, List<String> gone) {}
    List<Case> cases =
        List.of(
            new Case(
                "/set",
                Map.of("Some-Other-Header", "val"),
                Map.of("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values"),
                List.of()),
            new Case(
                "/set",
                Map.of("Some-Other-Header", "val", "X-Header-Set", "some-other-value"),
                Map.of("Some-Other-Header", "val", "X-Header-Set", "set-overwrites-values"),
                List.of()),
            new Case(
                "/add",
                Map.of("Some-Other-Header", "val"),
                Map.of("Some-Other-Header", "val", "X-Header-Add", "add-appends-values"),
                List.of()),
            new Case(
                "/add",
                Map.of("Some-Other-Header", "val", "X-Header-Add", "some-other-value"),
                Map.of(
                    "Some-Other-Header",
                    "val",
                    "X-Header-Add",
                    "some-other-value,add-appends-values"),
                List.of()),
            new Case(
                "/remove", Map.of("X-Header-Remove", "val"), Map.of(), List.of("X-Header-Remove")),
            new Case(
                "/multiple",
                Map.of(
                    "X-Header-Set-2", "set-val-2",
                    "X-Header-Add-2", "add-val-2",
                    "X-Header-Remove-2", "remove-val-2",
                    "Another-Header", "another-header-val"),
                Map.of(
                    "X-Header-Set-1", "header-set-1",
                    "X-Header-Set-2", "header-set-2",
                    "X-Header-Add-1", "header-add-1",
                    "X-Header-Add-2", "add-val-2,header-add-2",
                    "X-Header-Add-3", "header-add-3",
                    "Another-Header", "another-header-val"),
                List.of("X-Header-Remove-1", "X-Header-Remove-2")),
            new Case(
                "/case-insensitivity",
                Map.of(
                    "x-header-set", "original-val-set",
                    "x-header-add", "original-val-add",
                    "x-header-remove", "original-val-remove",
                    "Another-Header", "another-header-val"),
                Map.of(
                    "X-Header-Set", "header-set",
                    "X-Header-Add", "original-val-add,header-add",
                    "Another-Header", "another-header-val"),
                List.of("x-header-remove", "X-Header-Remove")));
    for (Case c : cases) {
      eventually(
          () -> {
            Reply r = get(c.path(), c.sent());
            expectBackend(r, "echo-v1");
            assertEquals(c.path(), r.uri(), r.toString());
            c.want().forEach((k, v) -> assertEquals(v, r.requestHeader(k), k + " in " + r));
            for (String g : c.gone()) {
              assertNull(r.requestHeader(g), g + " in " + r);
            }
          });
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteWeight")
  void meshHttpRouteWeight() throws Exception {
    mesh.apply(
        echoRoute(
            "weighted-backends",
            "- backendRefs: [{name: echo-v1, port: 8080, weight: 70}, {name: echo-v2, port: 8080,"
                + " weight: 30}]"));
    eventually(() -> assertEquals(200, get("echo", "/").status()));
    // The suite's check: 500 requests, each backend's share within 5 points of its weight, up to
    // 10 tries (a correct 70/30 random split misses 5 points about once in 70 tries; an even split
    // or one backend only misses every time).
    AssertionError last = null;
    for (int attempt = 0; attempt < 10; attempt++) {
      Map<String, Integer> served = mesh.servedBy("client", "echo", "/", 500);
      try {
        assertEquals(500, served.values().stream().mapToInt(Integer::intValue).sum(), "" + served);
        assertEquals(List.of("echo-v1", "echo-v2"), List.copyOf(served.keySet()), "" + served);
        assertTrue(Math.abs(served.get("echo-v1") / 500.0 - 0.7) <= 0.05, "" + served);
        assertTrue(Math.abs(served.get("echo-v2") / 500.0 - 0.3) <= 0.05, "" + served);
        return;
      } catch (AssertionError e) {
        last = e;
      }
    }
    throw last;
  }

  @Test
  @DisplayName("MeshTrafficSplit")
  void meshTrafficSplit() throws Exception {
    mesh.apply(
        route(
            "mesh-split",
            NS,
            "{group: \"\", kind: Service, name: echo}",
            """
            - matches: [{path: {type: Exact, value: /v1}}]
              backendRefs: [{name: echo-v1, port: 80}]
            - matches: [{path: {type: Exact, value: /v2}}]
              backendRefs: [{name: echo-v2, port: 80}]
            """));
    eventually(() -> expectBackend(get("echo", "/v1"), "echo-v1"));
    eventually(() -> expectBackend(get("echo", "/v2"), "echo-v2"));
  }

  @Test
  @DisplayName("MeshHTTPRouteRedirectHostAndStatus")
  void meshHttpRouteRedirectHostAndStatus() throws Exception {
    mesh.apply(
        echoRoute(
            "redirect-host-and-status",
            """
            - matches: [{path: {type: PathPrefix, value: /hostname-redirect}}]
              filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org}}]
            - matches: [{path: {type: PathPrefix, value: /host-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, hostname: example.org}}]
            """));
    eventually(
        () ->
            expectRedirect(
                get("echo", "/hostname-redirect"), 302, "http://example.org/hostname-redirect"));
    eventually(
        () ->
            expectRedirect(
                get("echo", "/host-and-status"), 301, "http://example.org/host-and-status"));
  }

  private static void expectRedirect(Reply r, int status, String location) {
    assertEquals(status, r.status(), r.toString());
    assertEquals(location, r.header("location"), r.toString());
  }

  // ---------------------------------------------------------------- MESH-HTTP extended

  @Test
  @DisplayName("MeshHTTPRoute303Redirect")
  void meshHttpRoute303Redirect() throws Exception {
    statusRedirect("/redirect", 303);
  }

  @Test
  @DisplayName("MeshHTTPRoute307Redirect")
  void meshHttpRoute307Redirect() throws Exception {
    statusRedirect("/temporary", 307);
  }

  @Test
  @DisplayName("MeshHTTPRoute308Redirect")
  void meshHttpRoute308Redirect() throws Exception {
    statusRedirect("/permanent", 308);
  }

  /** A RequestRedirect with only a status code: the same URL, that status. */
  private void statusRedirect(String path, int status) throws Exception {
    mesh.apply(
        echoRoute(
            "redirect-" + status,
            "- matches: [{path: {type: PathPrefix, value: %s}}]\n  filters: [{type: RequestRedirect, requestRedirect: {statusCode: %d}}]"
                .formatted(path, status)));
    eventually(() -> expectRedirect(get("echo", path), status, "http://echo" + path));
  }

  @Test
  @DisplayName("MeshHTTPRouteRedirectPath")
  void meshHttpRouteRedirectPath() throws Exception {
    mesh.apply(
        echoRoute(
            "redirect-path",
            """
            - matches: [{path: {type: PathPrefix, value: /original-prefix}}]
              filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}}]
            - matches: [{path: {type: PathPrefix, value: /full}}]
              filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}}]
            - matches: [{path: {type: PathPrefix, value: /path-and-host}}]
              filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}}]
            - matches: [{path: {type: PathPrefix, value: /path-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}}]
            - matches: [{path: {type: PathPrefix, value: /full-path-and-host}}]
              filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}}}]
            - matches: [{path: {type: PathPrefix, value: /full-path-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {statusCode: 301, path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}}}]
            """));
    String[][] cases = {
      {"/original-prefix/lemon", "302", "http://echo/replacement-prefix/lemon"},
      {"/full/path/original", "302", "http://echo/full-path-replacement"},
      {"/path-and-host", "302", "http://example.org/replacement-prefix"},
      {"/path-and-status", "301", "http://echo/replacement-prefix"},
      {"/full-path-and-host", "302", "http://example.org/replacement-full"},
      {"/full-path-and-status", "301", "http://echo/replacement-full"},
    };
    for (String[] c : cases) {
      eventually(() -> expectRedirect(get("echo", c[0]), Integer.parseInt(c[1]), c[2]));
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteRedirectPort")
  void meshHttpRouteRedirectPort() throws Exception {
    mesh.apply(
        echoRoute(
            "redirect-port",
            """
            - matches: [{path: {type: PathPrefix, value: /port}}]
              filters: [{type: RequestRedirect, requestRedirect: {port: 8083}}]
            - matches: [{path: {type: PathPrefix, value: /port-and-host}}]
              filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, port: 8083}}]
            - matches: [{path: {type: PathPrefix, value: /port-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {port: 8083, statusCode: 301}}]
            - matches: [{path: {type: PathPrefix, value: /port-and-host-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {port: 8083, hostname: example.org, statusCode: 302}}]
            """));
    String[][] cases = {
      {"/port", "302", "http://echo:8083/port"},
      {"/port-and-host", "302", "http://example.org:8083/port-and-host"},
      {"/port-and-status", "301", "http://echo:8083/port-and-status"},
      {"/port-and-host-and-status", "302", "http://example.org:8083/port-and-host-and-status"},
    };
    for (String[] c : cases) {
      eventually(() -> expectRedirect(get("echo", c[0]), Integer.parseInt(c[1]), c[2]));
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteSchemeRedirect")
  void meshHttpRouteSchemeRedirect() throws Exception {
    mesh.apply(
        echoRoute(
            "redirect-scheme",
            """
            - matches: [{path: {type: PathPrefix, value: /scheme}}]
              filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]
            - matches: [{path: {type: PathPrefix, value: /scheme-and-host}}]
              filters: [{type: RequestRedirect, requestRedirect: {hostname: example.org, scheme: https}}]
            - matches: [{path: {type: PathPrefix, value: /scheme-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 301}}]
            - matches: [{path: {type: PathPrefix, value: /scheme-and-host-and-status}}]
              filters: [{type: RequestRedirect, requestRedirect: {scheme: https, statusCode: 302, hostname: example.org}}]
            """));
    // A scheme change without a port drops the port: the new scheme's default applies.
    String[][] cases = {
      {"/scheme", "302", "https://echo/scheme"},
      {"/scheme-and-host", "302", "https://example.org/scheme-and-host"},
      {"/scheme-and-status", "301", "https://echo/scheme-and-status"},
      {"/scheme-and-host-and-status", "302", "https://example.org/scheme-and-host-and-status"},
    };
    for (String[] c : cases) {
      eventually(() -> expectRedirect(get("echo", c[0]), Integer.parseInt(c[1]), c[2]));
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteNamedRule")
  void meshHttpRouteNamedRule() throws Exception {
    mesh.apply(
        echoRoute(
            "named-rules",
            """
            - name: named-rule
              matches: [{path: {type: PathPrefix, value: /named}}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches: [{path: {type: PathPrefix, value: /unnamed}}]
              backendRefs: [{name: echo-v2, port: 8080}]
            """));
    eventually(
        () -> {
          Reply r = get("echo", "/named");
          expectBackend(r, "echo-v1");
          assertEquals("/named", r.uri(), r.toString());
        });
    eventually(() -> expectBackend(get("echo", "/unnamed"), "echo-v2"));
  }

  @Test
  @DisplayName("MeshHTTPRouteQueryParamMatching")
  void meshHttpRouteQueryParamMatching() throws Exception {
    mesh.apply(
        echoRoute(
            "query-param-matching",
            """
            - matches: [{queryParams: [{name: animal, value: whale}]}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches: [{queryParams: [{name: animal, value: dolphin}]}]
              backendRefs: [{name: echo-v2, port: 8080}]
            - matches:
                - path: {type: PathPrefix, value: /path1}
                  queryParams: [{name: animal, value: whale}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches:
                - headers: [{name: version, value: one}]
                  queryParams: [{name: animal, value: whale}]
              backendRefs: [{name: echo-v2, port: 8080}]
            - matches:
                - path: {type: PathPrefix, value: /path3}
                  queryParams: [{name: animal, value: shark}]
                - path: {type: PathPrefix, value: /path4}
                  headers: [{name: version, value: three}]
                  queryParams: [{name: animal, value: kraken}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches: [{path: {type: PathPrefix, value: /path5}}]
              backendRefs: [{name: echo-v1, port: 8080}]
            - matches: [{queryParams: [{name: animal, value: hydra}]}]
              backendRefs: [{name: echo-v2, port: 8080}]
            """));
    Map<String, String> none = Map.of();
    Object[][] cases = {
      {"/?animal=whale", none, "echo-v1"},
      {"/?animal=dolphin", none, "echo-v2"},
      {"/?animal=whale&otherparam=irrelevant", none, "echo-v1"},
      {"/?animal=dolphin&color=yellow", none, "echo-v2"},
      {"/?color=blue", none, "404"},
      {"/?animal=dog", none, "404"},
      {"/?animal=whaledolphin", none, "404"},
      {"/", none, "404"},
      {"/path1?animal=whale", none, "echo-v1"},
      {"/?animal=whale", Map.of("version", "one"), "echo-v2"},
      {"/path3?animal=shark", none, "echo-v1"},
      {"/path4?animal=kraken", Map.of("version", "three"), "echo-v1"},
      {"/?animal=shark", none, "404"},
      {"/path4?animal=kraken", none, "404"},
      {"/path5?animal=hydra", none, "echo-v1"},
    };
    for (Object[] c : cases) {
      @SuppressWarnings("unchecked")
      Map<String, String> h = (Map<String, String>) c[1];
      String want = (String) c[2];
      eventually(
          () -> {
            Reply r = get((String) c[0], h);
            if (want.equals("404")) {
              assertEquals(404, r.status(), c[0] + ": " + r);
            } else {
              expectBackend(r, want);
            }
          });
    }
  }

  @Test
  @DisplayName("MeshHTTPRouteBackendRequestHeaderModifier")
  void meshHttpRouteBackendRequestHeaderModifier() throws Exception {
    mesh.apply(echoRoute("backend-request-header-modifier", headerModifierRules(true)));
    checkRequestHeaderModifier();
  }

  @Test
  @DisplayName("MeshHTTPRouteRewritePath")
  void meshHttpRouteRewritePath() throws Exception {
    String modify =
        """
        - type: RequestHeaderModifier
          requestHeaderModifier:
            set: [{name: X-Header-Set, value: set-overwrites-values}]
            add: [{name: X-Header-Add, value: header-val-1}, {name: X-Header-Add-Append, value: header-val-2}]
            remove: [X-Header-Remove]
        """
            .indent(4);
    mesh.apply(
        echoRoute(
            "rewrite-path",
            """
            - matches: [{path: {type: PathPrefix, value: /prefix/one}}]
              filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]
              backendRefs: [{name: echo-v1, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /strip-prefix}}]
              filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]
              backendRefs: [{name: echo-v1, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /full/one}}]
              filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]
              backendRefs: [{name: echo-v1, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /full/rewrite-path-and-modify-headers}}]
              filters:
                - {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /test}}}
            %s  backendRefs: [{name: echo-v1, port: 80}]
            - matches: [{path: {type: PathPrefix, value: /prefix/rewrite-path-and-modify-headers}}]
              filters:
                - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /prefix}}}
            %s  backendRefs: [{name: echo-v1, port: 80}]
            """
                .formatted(modify, modify)));
    String[][] plain = {
      {"/prefix/one/two", "/one/two"},
      {"/strip-prefix/three", "/three"},
      {"/strip-prefix", "/"},
      {"/full/one/two", "/one"},
    };
    for (String[] c : plain) {
      eventually(
          () -> {
            Reply r = get("echo", c[0]);
            expectBackend(r, "echo-v1");
            assertEquals(c[1], r.uri(), r.toString());
          });
    }
    Map<String, String> sent = new LinkedHashMap<>();
    sent.put("X-Header-Remove", "remove-val");
    sent.put("X-Header-Add-Append", "append-val-1");
    sent.put("X-Header-Set", "set-val");
    String[][] withHeaders = {
      {"/full/rewrite-path-and-modify-headers/test", "/test"},
      {"/prefix/rewrite-path-and-modify-headers/one", "/prefix/one"},
    };
    for (String[] c : withHeaders) {
      eventually(
          () -> {
            Reply r = get(c[0], sent);
            expectBackend(r, "echo-v1");
            assertEquals(c[1], r.uri(), r.toString());
            assertEquals("header-val-1", r.requestHeader("X-Header-Add"), r.toString());
            assertEquals(
                "append-val-1,header-val-2", r.requestHeader("X-Header-Add-Append"), r.toString());
            assertEquals("set-overwrites-values", r.requestHeader("X-Header-Set"), r.toString());
            assertNull(r.requestHeader("X-Header-Remove"), r.toString());
          });
    }
  }

  @Test
  @DisplayName("MeshConsumerRoute")
  void meshConsumerRoute() throws Exception {
    mesh.apply(
        route(
            "mesh-echo-add-header",
            ConformanceMesh.CONSUMER_NS,
            "{group: \"\", kind: Service, name: echo-v1, namespace: " + NS + "}",
            """
            - filters:
                - type: ResponseHeaderModifier
                  responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}
              backendRefs: [{name: echo-v1, namespace: %s, port: 80}]
            """
                .formatted(NS)));
    // The consumer namespace's calls take its route; the producer namespace's do not.
    eventually(
        () -> {
          Reply r = mesh.send("consumer", "echo-v1", "echo-v1." + NS, "/", Map.of());
          expectBackend(r, "echo-v1");
          assertEquals("set", r.header("X-Header-Set"), r.toString());
        });
    eventually(
        () -> {
          Reply r = mesh.send("client", "echo-v1", "echo-v1." + NS, "/", Map.of());
          expectBackend(r, "echo-v1");
          assertNull(r.header("X-Header-Set"), r.toString());
        });
  }

  /** MeshFrontend's and MeshFrontendHostname's routes: echo-v2's responses carry a header. */
  private static final String FRONTEND =
      route(
          "mesh-frontend",
          NS,
          "{group: \"\", kind: Service, name: echo-v2}",
          """
          - filters:
              - type: ResponseHeaderModifier
                responseHeaderModifier: {set: [{name: X-Header-Set, value: set}]}
            backendRefs: [{name: echo-v2, port: 80}]
          """);

  @Test
  @DisplayName("MeshFrontend")
  void meshFrontend() throws Exception {
    mesh.apply(FRONTEND);
    // Through the Service the route applies; straight to the pod's IP it does not.
    eventually(
        () -> {
          Reply r = get("echo-v2", "/");
          expectBackend(r, "echo-v2");
          assertEquals("set", r.header("X-Header-Set"), r.toString());
        });
    String pod = mesh.podIp("echo-v2") + ":8080";
    eventually(
        () -> {
          Reply r = mesh.send("client", pod, pod, "/", Map.of());
          expectBackend(r, "echo-v2");
          assertNull(r.header("X-Header-Set"), r.toString());
        });
  }

  @Test
  @DisplayName("MeshFrontendHostname")
  void meshFrontendHostname() throws Exception {
    mesh.apply(FRONTEND);
    // The Service dialled (its cluster IP) picks the route, never the Host header.
    eventually(
        () -> {
          Reply r = mesh.send("client", "echo-v2", "echo-v1", "/", Map.of());
          expectBackend(r, "echo-v2");
          assertEquals("set", r.header("X-Header-Set"), r.toString());
        });
    eventually(
        () -> {
          Reply r = mesh.send("client", "echo-v1", "echo-v2", "/", Map.of());
          expectBackend(r, "echo-v1");
          assertNull(r.header("X-Header-Set"), r.toString());
        });
  }

  @Test
  @DisplayName("MeshPorts")
  void meshPorts() throws Exception {
    mesh.apply(
        route(
                "mesh-ports-v1",
                NS,
                "{group: \"\", kind: Service, name: echo-v1, port: 80}",
                """
                - filters:
                    - type: ResponseHeaderModifier
                      responseHeaderModifier: {set: [{name: X-Header-Set, value: v1}]}
                  backendRefs: [{name: echo-v1, port: 80}]
                """)
            + route(
                "mesh-ports-v2",
                NS,
                "{group: \"\", kind: Service, name: echo-v2}",
                """
                - filters:
                    - type: ResponseHeaderModifier
                      responseHeaderModifier: {set: [{name: X-Header-Set, value: v2}]}
                  backendRefs: [{name: echo-v2, port: 80}]
                """));
    // A parentRef with a port applies to that port only; one without applies to every port.
    eventually(
        () -> {
          Reply r = get("echo-v1", "/");
          expectBackend(r, "echo-v1");
          assertEquals("v1", r.header("X-Header-Set"), r.toString());
        });
    eventually(
        () -> {
          Reply r = get("echo-v1:8080", "/");
          expectBackend(r, "echo-v1");
          assertNull(r.header("X-Header-Set"), r.toString());
        });
    for (String target : List.of("echo-v2", "echo-v2:8080")) {
      eventually(
          () -> {
            Reply r = get(target, "/");
            expectBackend(r, "echo-v2");
            assertEquals("v2", r.header("X-Header-Set"), r.toString());
          });
    }
  }
}
