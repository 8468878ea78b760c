package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import dev.nodemesh.api.config.v1.BackendRef;
import dev.nodemesh.api.config.v1.HeaderModifier;
import dev.nodemesh.api.config.v1.HttpMatch;
import dev.nodemesh.api.config.v1.HttpRouteRule;
import dev.nodemesh.api.config.v1.RequestRedirect;
import dev.nodemesh.api.config.v1.RouteParent;
import dev.nodemesh.api.config.v1.StringMatch;
import dev.nodemesh.api.config.v1.UrlRewrite;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The HttpRoute kind's wire form of the RequestRedirect filter and of backendRef filters: what the
 * control plane encodes decodes to the same rule, and a proxy refuses what the YAML parser would
 * have refused, naming the field.
 */
class HttpRouteKindTest {
  private static final NamespacedName WEB = new NamespacedName("shop", "web");

  private static HttpRoute route(HttpRoute.Rule rule) {
    return new HttpRoute(
        "r", "shop", List.of(new HttpRoute.Parent(WEB, 80)), List.of(rule), false, 0);
  }

  private static HttpRoute.Rule rule(
      List<HttpRoute.Backend> backends, HttpRoute.@Nullable Redirect rd) {
    return new HttpRoute.Rule(
        List.of(HttpRoute.Match.everything()),
        backends,
        HttpRoute.HeaderModifier.NONE,
        HttpRoute.HeaderModifier.NONE,
        null,
        null,
        null,
        null,
        null,
        null,
        rd);
  }

  private static HttpRoute decode(dev.nodemesh.api.config.v1.HttpRoute wire, List<String> errors) {
    return HttpRouteKind.WIRE.decode(new ResourceDecoder(errors), "shop/r", wire);
  }

  @Test
  void redirectsAndBackendFiltersSurviveTheWire() {
    HttpRoute.HeaderModifier req =
        new HttpRoute.HeaderModifier(Map.of("x-to", "v1"), Map.of("x-add", "a"), Set.of("x-drop"));
    HttpRoute.HeaderModifier resp =
        new HttpRoute.HeaderModifier(Map.of(), Map.of("x-from", "v1"), Set.of());
    List<HttpRoute> routes =
        List.of(
            route(
                rule(
                    List.of(
                        new HttpRoute.Backend(WEB, 80, 90, true, req, resp),
                        new HttpRoute.Backend(new NamespacedName("shop", "v2"), 80, 10)),
                    null)),
            route(
                rule(
                    List.of(),
                    new HttpRoute.Redirect("https", "example.org", null, "/new", 8443, 301))),
            route(rule(List.of(), new HttpRoute.Redirect(null, null, "/full", null, 0, 308))),
            route(rule(List.of(), new HttpRoute.Redirect(null, null, null, null, 0, 302))));
    for (HttpRoute r : routes) {
      List<String> errors = new ArrayList<>();
      assertEquals(r, decode(HttpRouteKind.encode(r), errors), errors.toString());
      assertEquals(List.of(), errors);
    }
  }

  @Test
  void aRedirectWithoutStatusIsGatewayApisDefault() {
    List<String> errors = new ArrayList<>();
    HttpRoute r =
        decode(wire(b -> b.setRedirect(RequestRedirect.newBuilder().setHostname("a.b"))), errors);
    assertEquals(
        new HttpRoute.Redirect(null, "a.b", null, null, 0, 302), r.rules().get(0).redirect());
  }

  static Stream<Arguments> badRules() {
    return Stream.of(
        Arguments.of(
            "scheme",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRedirect(RequestRedirect.newBuilder().setScheme("ftp")),
            "HttpRoute shop/r: rules[0].redirect.scheme: \"ftp\" is not http or https"),
        Arguments.of(
            "hostname",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRedirect(RequestRedirect.newBuilder().setHostname("a\r\nb")),
            "HttpRoute shop/r: rules[0].redirect.hostname: \"a\r\nb\" is not a precise hostname"),
        Arguments.of(
            "status",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRedirect(RequestRedirect.newBuilder().setStatusCode(200)),
            "HttpRoute shop/r: rules[0].redirect.status_code: 200 is not 301, 302, 303, 307 or"
                + " 308"),
        Arguments.of(
            "port",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRedirect(RequestRedirect.newBuilder().setPort(70000)),
            "HttpRoute shop/r: rules[0].redirect.port: 70000 is out of range 1-65535"),
        Arguments.of(
            "full path",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRedirect(RequestRedirect.newBuilder().setReplaceFullPath("x")),
            "HttpRoute shop/r: rules[0].redirect.replace_full_path: \"x\" is not a path"),
        Arguments.of(
            "prefix on an exact match",
            (UnaryOperator<HttpRouteRule.Builder>)
                b ->
                    b.setMatches(
                            0,
                            HttpMatch.newBuilder()
                                .setPath(
                                    StringMatch.newBuilder()
                                        .setKind(StringMatch.Kind.EXACT)
                                        .setValue("/a")))
                        .setRedirect(RequestRedirect.newBuilder().setReplacePrefixMatch("/b")),
            "HttpRoute shop/r: rules[0].redirect.replace_prefix_match: needs every match to be a"
                + " path prefix"),
        Arguments.of(
            "with a rewrite",
            (UnaryOperator<HttpRouteRule.Builder>)
                b ->
                    b.setRedirect(RequestRedirect.newBuilder().setHostname("a"))
                        .setRewrite(UrlRewrite.newBuilder().setHostname("b")),
            "HttpRoute shop/r: rules[0].redirect: a rule with a redirect has no URL rewrite"),
        Arguments.of(
            "backend header value",
            (UnaryOperator<HttpRouteRule.Builder>)
                b ->
                    b.addBackends(
                        backend()
                            .setRequestHeaders(HeaderModifier.newBuilder().putSet("x-a", "1\n2"))),
            "HttpRoute shop/r: rules[0].backends[0].request_headers.set[x-a]: the value must not"
                + " contain CR, LF or NUL"),
        Arguments.of(
            "backend header name",
            (UnaryOperator<HttpRouteRule.Builder>)
                b ->
                    b.addBackends(
                        backend().setResponseHeaders(HeaderModifier.newBuilder().addRemove("a b"))),
            "HttpRoute shop/r: rules[0].backends[0].response_headers.remove: \"a b\" is not a"
                + " valid header name"),
        Arguments.of(
            "rule header value",
            (UnaryOperator<HttpRouteRule.Builder>)
                b -> b.setRequestHeaders(HeaderModifier.newBuilder().putAdd("x-a", "1\r")),
            "HttpRoute shop/r: rules[0].request_headers.add[x-a]: the value must not contain CR,"
                + " LF or NUL"));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badRules")
  void badRedirectsAndBackendFiltersAreRefusedWithTheirField(
      String what, UnaryOperator<HttpRouteRule.Builder> change, String error) {
    List<String> errors = new ArrayList<>();
    assertNull(decode(wire(change), errors));
    assertEquals(List.of(error), errors);
  }

  private static BackendRef.Builder backend() {
    return BackendRef.newBuilder().setNamespace("shop").setService("web").setPort(80);
  }

  private static dev.nodemesh.api.config.v1.HttpRoute wire(
      UnaryOperator<HttpRouteRule.Builder> change) {
    HttpRouteRule.Builder rule =
        HttpRouteRule.newBuilder()
            .addMatches(
                HttpMatch.newBuilder()
                    .setPath(
                        StringMatch.newBuilder()
                            .setKind(StringMatch.Kind.PATH_PREFIX)
                            .setValue("/")));
    return dev.nodemesh.api.config.v1.HttpRoute.newBuilder()
        .setName("r")
        .setNamespace("shop")
        .addParents(RouteParent.newBuilder().setNamespace("shop").setService("web").setPort(80))
        .addRules(change.apply(rule))
        .build();
  }
}
