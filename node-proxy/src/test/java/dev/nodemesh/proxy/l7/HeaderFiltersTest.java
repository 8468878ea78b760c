package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import io.netty.buffer.Unpooled;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The header layer on its own: what goes upstream and what comes back, per rule. */
class HeaderFiltersTest {
  private static final Random RANDOM = new Random(7);

  private static HttpRouteEntry entry(
      HttpRoute.HeaderModifier request, HttpRoute.HeaderModifier response) {
    HttpRoute.Rule rule =
        new HttpRoute.Rule(
            List.of(HttpRoute.Match.everything()),
            List.of(),
            request,
            response,
            null,
            null,
            null,
            null,
            null,
            null);
    HttpRoute route = new HttpRoute("r", "default", List.of(), List.of(rule), false, 0);
    return new HttpRouteEntry(route, 80, 0, rule, rule.matches().get(0));
  }

  private static final HttpRouteEntry PLAIN =
      entry(HttpRoute.HeaderModifier.NONE, HttpRoute.HeaderModifier.NONE);

  private static HttpRequest request(String... headers) {
    HttpRequest r = new DefaultHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/p?q=1");
    for (int i = 0; i < headers.length; i += 2) {
      r.headers().add(headers[i], headers[i + 1]);
    }
    return r;
  }

  @Test
  void upstreamHeadDropsHopByHopAndAddsMeshHeaders() {
    HttpRequest head =
        request(
            "connection", "keep-alive, x-private",
            "x-private", "1",
            "keep-alive", "timeout=5",
            "upgrade", "h2c",
            "x-http2-stream-id", "3",
            "te", "trailers",
            "x-forwarded-for", "192.0.2.1",
            "traceparent", "00-1-2-01",
            "x-kept", "yes");
    HttpRequest up =
        HeaderFilters.upstreamHead(
            head, PLAIN, null, false, false, "id-1", "10.1.0.10", "web", RANDOM);
    HttpHeaders h = up.headers();
    for (String gone :
        List.of("connection", "x-private", "keep-alive", "upgrade", "x-http2-stream-id", "te")) {
      assertFalse(h.contains(gone), gone);
    }
    assertEquals("yes", h.get("x-kept"));
    assertEquals("id-1", h.get("x-request-id"));
    assertEquals("192.0.2.1, 10.1.0.10", h.get("x-forwarded-for"));
    assertEquals("http", h.get("x-forwarded-proto"));
    assertEquals("00-1-2-01", h.get("traceparent"), "a client's trace goes on");
    assertEquals("web", h.get("host"), "the dialled Service when the client sent no Host");
    assertEquals("/p?q=1", up.uri());
    assertEquals("trailers", head.headers().get("te"), "the client's head is not changed");
  }

  @Test
  void teTrailersSurvivesOnlyToHttp2AndABodyWithoutLengthIsChunked() {
    HttpRequest up =
        HeaderFilters.upstreamHead(
            request("te", "trailers", "host", "web:80"),
            PLAIN,
            null,
            true,
            true,
            "id",
            "10.1.0.10",
            "web",
            RANDOM);
    assertEquals("trailers", up.headers().get("te"));
    assertEquals("web:80", up.headers().get("host"));
    assertTrue(up.headers().get("traceparent").matches("00-[0-9a-f]{32}-[0-9a-f]{16}-01"));
    assertEquals("chunked", up.headers().get("transfer-encoding"), "h2 stream, no length");
    HttpRequest sized =
        HeaderFilters.upstreamHead(
            request("content-length", "5"), PLAIN, null, false, true, "id", "ip", "web", RANDOM);
    assertNull(sized.headers().get("transfer-encoding"));
  }

  @Test
  void modifiersSetAddAndRemoveInBothDirections() {
    HttpRouteEntry e =
        entry(
            new HttpRoute.HeaderModifier(
                Map.of("x-set", "s"), Map.of("x-add", "a2"), Set.of("x-drop")),
            new HttpRoute.HeaderModifier(Map.of(), Map.of("x-resp", "r"), Set.of("server")));
    HttpRequest up =
        HeaderFilters.upstreamHead(
            request("x-set", "old", "x-add", "a1", "x-drop", "d"),
            e,
            null,
            false,
            false,
            "id",
            "ip",
            "web",
            RANDOM);
    assertEquals("s", up.headers().get("x-set"));
    assertEquals(List.of("a1", "a2"), up.headers().getAll("x-add"));
    assertFalse(up.headers().contains("x-drop"));
    HttpResponse resp = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    resp.headers().set("server", "nginx").set("connection", "close");
    HttpResponse down = HeaderFilters.downstreamHead(resp, e, null, false, false);
    assertEquals("r", down.headers().get("x-resp"));
    assertFalse(down.headers().contains("server"));
    assertFalse(down.headers().contains("connection"));
    assertEquals("chunked", down.headers().get("transfer-encoding"), "streamed, no length");
  }

  @Test
  void thePickedBackendsModifiersApplyAfterTheRules() {
    HttpRouteEntry e =
        entry(
            new HttpRoute.HeaderModifier(
                Map.of("x-set", "rule"), Map.of("x-add", "rule"), Set.of()),
            new HttpRoute.HeaderModifier(Map.of("x-resp", "rule"), Map.of(), Set.of()));
    HttpRoute.Backend backend =
        new HttpRoute.Backend(
            new dev.nodemesh.model.config.NamespacedName("default", "v1"),
            80,
            1,
            true,
            new HttpRoute.HeaderModifier(
                Map.of("x-set", "backend"), Map.of("x-add", "backend"), Set.of("x-drop")),
            new HttpRoute.HeaderModifier(Map.of(), Map.of("x-resp", "backend"), Set.of("server")));
    HttpRequest up =
        HeaderFilters.upstreamHead(
            request("x-set", "client", "x-drop", "d"),
            e,
            backend,
            false,
            false,
            "id",
            "ip",
            "web",
            RANDOM);
    assertEquals("backend", up.headers().get("x-set"), "the backend's set wins");
    assertEquals(List.of("rule", "backend"), up.headers().getAll("x-add"));
    assertFalse(up.headers().contains("x-drop"));
    HttpResponse resp = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    resp.headers().set("server", "nginx");
    HttpResponse down = HeaderFilters.downstreamHead(resp, e, backend, false, false);
    assertEquals(List.of("rule", "backend"), down.headers().getAll("x-resp"));
    assertFalse(down.headers().contains("server"));
    // Another backend of the same rule (none of its own) gets the rule's alone.
    HttpRequest other =
        HeaderFilters.upstreamHead(
            request("x-drop", "d"),
            e,
            new HttpRoute.Backend(
                new dev.nodemesh.model.config.NamespacedName("default", "v2"), 80, 1),
            false,
            false,
            "id",
            "ip",
            "web",
            RANDOM);
    assertEquals("rule", other.headers().get("x-set"));
    assertEquals("d", other.headers().get("x-drop"));
  }

  @Test
  void downstreamFramingForWholeBodylessAndHttp2Responses() {
    FullHttpResponse full =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled.wrappedBuffer(new byte[3]));
    try {
      assertEquals(
          "3",
          HeaderFilters.downstreamHead(full, null, null, false, false)
              .headers()
              .get("content-length"));
      HttpHeaders h2 = HeaderFilters.downstreamHead(full, null, null, false, true).headers();
      assertFalse(h2.contains("content-length") || h2.contains("transfer-encoding"));
    } finally {
      full.release();
    }
    HttpResponse noContent =
        new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.NO_CONTENT);
    assertFalse(
        HeaderFilters.downstreamHead(noContent, null, null, false, false)
            .headers()
            .contains("transfer-encoding"));
    HttpResponse ok = new DefaultHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    assertFalse(
        HeaderFilters.downstreamHead(ok, null, null, true, false)
            .headers()
            .contains("transfer-encoding"),
        "the answer to a HEAD has no body");
  }

  @Test
  void generatedIdsHaveTheirStandardShape() {
    java.util.Random rnd = new java.util.Random(42);
    java.util.Set<String> seen = new java.util.HashSet<>();
    for (int i = 0; i < 1000; i++) {
      String id = HeaderFilters.requestId(rnd);
      java.util.UUID u = java.util.UUID.fromString(id);
      assertEquals(id, u.toString());
      assertEquals(4, u.version());
      assertEquals(2, u.variant());
      assertTrue(seen.add(id), id);
      String tp = HeaderFilters.traceparent(rnd);
      assertTrue(tp.matches("00-[0-9a-f]{32}-[0-9a-f]{16}-01"), tp);
      assertFalse(tp.substring(3, 35).equals("0".repeat(32)), tp);
      assertFalse(tp.substring(36, 52).equals("0".repeat(16)), tp);
    }
    java.util.Random fixed =
        new java.util.Random() {
          @Override
          public long nextLong() {
            return 0x0123456789abcdefL;
          }
        };
    assertEquals("01234567-89ab-4def-8123-456789abcdef", HeaderFilters.requestId(fixed));
    assertEquals(
        "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        HeaderFilters.traceparent(fixed));
  }
}
