package dev.nodemesh.proxy.l7.path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The filter behind a real HTTP/1.1 server codec: heads leave it normalised or marked failed. */
class RequestTargetFilterTest {
  private static HttpRequest head(EmbeddedChannel ch, String requestLineAndHeaders) {
    ch.writeInbound(
        Unpooled.copiedBuffer(requestLineAndHeaders + "\r\n", StandardCharsets.ISO_8859_1));
    Object msg = ch.readInbound();
    HttpRequest head = assertInstanceOf(HttpRequest.class, msg);
    Object end;
    while ((end = ch.readInbound()) != null) {
      ReferenceCountUtil.release(end);
    }
    return head;
  }

  @Test
  void headsLeaveNormalisedOrMarkedAsMalformedWithTheReason() {
    EmbeddedChannel ch =
        new EmbeddedChannel(new HttpServerCodec(), new RequestTargetFilter(PathSettings.DEFAULT));
    HttpRequest ok = head(ch, "GET /x/../%61dmin?q=/../ HTTP/1.1\r\nHost: web\r\n");
    assertTrue(ok.decoderResult().isSuccess());
    assertEquals("/admin?q=/../", ok.uri());
    assertEquals("web", ok.headers().get("host"));

    HttpRequest absolute = head(ch, "GET http://api:8080//admin HTTP/1.1\r\nHost: web\r\n");
    assertEquals("/admin", absolute.uri());
    assertEquals("api:8080", absolute.headers().get("host"));

    HttpRequest bad = head(ch, "GET /public/..;/admin HTTP/1.1\r\nHost: web\r\n");
    assertTrue(bad.decoderResult().isFailure());
    assertEquals(
        "invalid request-target: dot segment with parameters (such as ..;) in the path",
        bad.decoderResult().cause().getMessage());
    assertEquals("/public/..;/admin", bad.uri(), "kept as received for the access log");
    ch.finishAndReleaseAll();
  }
}
