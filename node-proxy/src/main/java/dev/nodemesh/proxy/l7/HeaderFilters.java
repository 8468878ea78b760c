package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.DefaultHttpResponse;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.AsciiString;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.jspecify.annotations.Nullable;

/**
 * The header layer of an L7 exchange: the head sent upstream (hop-by-hop headers dropped, {@code
 * x-request-id}, {@code traceparent} and {@code x-forwarded-*} added, the rule's request header
 * modifier, then the picked backendRef's, and URLRewrite applied, framing chosen for HTTP/1.1) and
 * the head sent back downstream (hop-by-hop dropped, the rule's response header modifier, then the
 * backendRef's, framing). Pure functions of their arguments: nothing here does I/O, so each rewrite
 * is a table row in {@code HeaderFiltersTest}.
 */
final class HeaderFilters {
  private HeaderFilters() {}

  // AsciiString names: their hash is computed once, not on every remove.
  private static final List<AsciiString> HOP_BY_HOP =
      List.of(
          AsciiString.cached("connection"),
          AsciiString.cached("keep-alive"),
          AsciiString.cached("proxy-connection"),
          AsciiString.cached("transfer-encoding"),
          AsciiString.cached("upgrade"),
          AsciiString.cached("te"),
          AsciiString.cached("trailer"),
          AsciiString.cached("expect"),
          AsciiString.cached("http2-settings"));

  private static final AsciiString X_HTTP2 = AsciiString.cached("x-http2-");

  private static final char[] HEX = "0123456789abcdef".toCharArray();

  /**
   * The head sent upstream for {@code head} under {@code entry}'s rule, sent to {@code backend}.
   *
   * @param backend the backendRef picked, whose own request header modifier applies after the
   *     rule's; null for none
   * @param h2Upstream the upstream speaks HTTP/2 (then {@code te: trailers} is kept, for gRPC)
   * @param h2Downstream the client spoke HTTP/2 (a body without length is sent chunked upstream)
   * @param defaultHost the Host when the client sent none (the dialled Service's name)
   */
  static HttpRequest upstreamHead(
      HttpRequest head,
      HttpRouteEntry entry,
      HttpRoute.@Nullable Backend backend,
      boolean h2Upstream,
      boolean h2Downstream,
      String requestId,
      String clientIp,
      String defaultHost,
      Random random) {
    HttpHeaders h = head.headers().copy();
    boolean chunked = HttpUtil.isTransferEncodingChunked(head);
    boolean keepTeTrailers = h2Upstream && "trailers".equalsIgnoreCase(h.get("te"));
    stripHopByHop(h);
    if (keepTeTrailers) {
      h.set("te", "trailers");
    }
    h.set("x-request-id", requestId);
    if (!h.contains("traceparent")) {
      h.set("traceparent", traceparent(random));
    }
    String xff = h.get("x-forwarded-for");
    h.set("x-forwarded-for", xff == null ? clientIp : xff + ", " + clientIp);
    if (!h.contains("x-forwarded-proto")) {
      h.set("x-forwarded-proto", "http");
    }
    applyModifier(h, entry.rule().requestHeaders());
    if (backend != null) {
      applyModifier(h, backend.requestHeaders());
    }
    String host = HttpRouter.rewriteHost(entry);
    if (host != null) {
      h.set(HttpHeaderNames.HOST, host);
    }
    if (!h.contains(HttpHeaderNames.HOST)) {
      h.set(HttpHeaderNames.HOST, defaultHost);
    }
    if (!h.contains(HttpHeaderNames.CONTENT_LENGTH)
        && (chunked || (h2Downstream && !(head instanceof FullHttpMessage)))) {
      h.set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
    }
    String uri = HttpRouter.rewritePath(entry, head.uri());
    return new DefaultHttpRequest(HttpVersion.HTTP_1_1, head.method(), uri, h);
  }

  /**
   * The response head sent downstream for the upstream's {@code head}.
   *
   * @param entry the route entry whose response header modifier applies, null for none
   * @param backend the backendRef the request went to, whose own response header modifier applies
   *     after the rule's; null for none
   * @param headRequest the request was a HEAD (its response has no body, whatever it says)
   */
  static HttpResponse downstreamHead(
      HttpResponse head,
      @Nullable HttpRouteEntry entry,
      HttpRoute.@Nullable Backend backend,
      boolean headRequest,
      boolean h2Downstream) {
    HttpHeaders h = head.headers().copy();
    boolean chunked = HttpUtil.isTransferEncodingChunked(head);
    stripHopByHop(h);
    if (entry != null) {
      applyModifier(h, entry.rule().responseHeaders());
    }
    if (backend != null) {
      applyModifier(h, backend.responseHeaders());
    }
    int code = head.status().code();
    boolean bodyless = headRequest || code == 204 || code == 304;
    if (!h2Downstream && !bodyless && !h.contains(HttpHeaderNames.CONTENT_LENGTH)) {
      if (head instanceof FullHttpMessage full && !chunked) {
        h.setInt(HttpHeaderNames.CONTENT_LENGTH, full.content().readableBytes());
      } else {
        h.set(HttpHeaderNames.TRANSFER_ENCODING, HttpHeaderValues.CHUNKED);
      }
    }
    return new DefaultHttpResponse(HttpVersion.HTTP_1_1, head.status(), h);
  }

  /** Drops the headers that belong to one connection, and those {@code Connection} names. */
  static void stripHopByHop(HttpHeaders h) {
    String connection = h.get(HttpHeaderNames.CONNECTION);
    if (connection != null) {
      for (String token : connection.split(",")) {
        h.remove(token.trim());
      }
    }
    for (AsciiString name : HOP_BY_HOP) {
      h.remove(name);
    }
    // Names as the codec made them: iterating as Strings would copy every name per message.
    List<CharSequence> ext = null;
    for (Iterator<Map.Entry<CharSequence, CharSequence>> it = h.iteratorCharSequence();
        it.hasNext(); ) {
      CharSequence name = it.next().getKey();
      if (AsciiString.regionMatches(name, true, 0, X_HTTP2, 0, X_HTTP2.length())) {
        if (ext == null) {
          ext = new ArrayList<>();
        }
        ext.add(name);
      }
    }
    if (ext != null) {
      ext.forEach(h::remove);
    }
  }

  /** Gateway API's header modifier: set, then add, then remove. */
  static void applyModifier(HttpHeaders h, HttpRoute.HeaderModifier m) {
    if (m.isEmpty()) {
      return;
    }
    m.set().forEach(h::set);
    m.add().forEach(h::add);
    m.remove().forEach(h::remove);
  }

  /**
   * A random (version 4) UUID for {@code x-request-id}. {@link java.util.UUID#randomUUID} draws
   * from a shared SecureRandom on the event loop; an ID for correlating log lines needs uniqueness,
   * not unpredictability, so a thread-local generator does.
   */
  static String requestId(Random rnd) {
    long hi = (rnd.nextLong() & ~0xf000L) | 0x4000L; // version 4
    long lo = (rnd.nextLong() & 0x3fffffffffffffffL) | 0x8000000000000000L; // IETF variant
    char[] c = new char[36];
    hex(hi >>> 32, 8, c, 0);
    c[8] = '-';
    hex(hi >>> 16, 4, c, 9);
    c[13] = '-';
    hex(hi, 4, c, 14);
    c[18] = '-';
    hex(lo >>> 48, 4, c, 19);
    c[23] = '-';
    hex(lo, 12, c, 24);
    return new String(c);
  }

  /** A W3C {@code traceparent} starting a sampled trace: random non-zero trace and span IDs. */
  static String traceparent(Random rnd) {
    char[] c = new char[55];
    c[0] = '0';
    c[1] = '0';
    c[2] = '-';
    hex(rnd.nextLong(), 16, c, 3);
    hex(rnd.nextLong() | 1, 16, c, 19);
    c[35] = '-';
    hex(rnd.nextLong() | 1, 16, c, 36);
    c[52] = '-';
    c[53] = '0';
    c[54] = '1';
    return new String(c);
  }

  /** The low {@code digits} hex digits of {@code v}, lowercase, into {@code c} at {@code at}. */
  private static void hex(long v, int digits, char[] c, int at) {
    for (int i = digits - 1; i >= 0; i--) {
      c[at + i] = HEX[(int) (v & 0xf)];
      v >>>= 4;
    }
  }
}
