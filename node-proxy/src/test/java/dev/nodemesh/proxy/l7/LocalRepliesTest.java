package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/** The proxy's own answers, as built (the exchange decides when). */
class LocalRepliesTest {
  @Test
  void malformedInputMapsTo431414Or400() {
    assertEquals(431, LocalReplies.forMalformed(new TooLongHttpHeaderException("h")).code());
    assertEquals(414, LocalReplies.forMalformed(new TooLongHttpLineException("l")).code());
    assertEquals(431, LocalReplies.forMalformed(new TooLongFrameException("f")).code());
    assertEquals(400, LocalReplies.forMalformed(new IllegalArgumentException("x")).code());
    assertEquals(400, LocalReplies.forMalformed(null).code());
  }

  @Test
  void anHttpAnswerSaysWhyAndKeepsTheLengthForHead() {
    FullHttpResponse r =
        LocalReplies.http(
            HttpResponseStatus.TOO_MANY_REQUESTS, "rate limited", "id", false, 3, false);
    try {
      assertEquals(429, r.status().code());
      assertEquals("429 rate limited\n", r.content().toString(StandardCharsets.UTF_8));
      assertEquals("17", r.headers().get("content-length"));
      assertEquals("3", r.headers().get("retry-after"));
      assertEquals("id", r.headers().get("x-request-id"));
      assertNull(r.headers().get("connection"));
    } finally {
      r.release();
    }
    FullHttpResponse head =
        LocalReplies.http(HttpResponseStatus.BAD_REQUEST, "malformed request", "id", true, 0, true);
    try {
      assertEquals(0, head.content().readableBytes());
      assertEquals("22", head.headers().get("content-length"), "what a GET would get");
      assertEquals("close", head.headers().get("connection"));
      assertNull(head.headers().get("retry-after"));
    } finally {
      head.release();
    }
  }

  @Test
  void aRedirectHasItsStatusAndLocationAndNoBody() {
    FullHttpResponse r = LocalReplies.redirect(308, "https://example.org/x?y=1", "id");
    try {
      assertEquals(308, r.status().code());
      assertEquals("https://example.org/x?y=1", r.headers().get("location"));
      assertEquals("0", r.headers().get("content-length"));
      assertEquals(0, r.content().readableBytes());
      assertEquals("id", r.headers().get("x-request-id"));
    } finally {
      r.release();
    }
  }

  @Test
  void aGrpcAnswerIsTrailersOnly() {
    FullHttpResponse h2 = LocalReplies.grpc(14, "no healthy upstream", "id", 0, true);
    try {
      assertEquals(200, h2.status().code());
      assertEquals("14", h2.headers().get("grpc-status"));
      assertEquals("no%20healthy%20upstream", h2.headers().get("grpc-message"));
      assertEquals("application/grpc", h2.headers().get("content-type"));
      assertNull(h2.headers().get("content-length"), "the HEADERS frame ends the stream");
      assertEquals(0, h2.content().readableBytes());
    } finally {
      h2.release();
    }
    FullHttpResponse h1 = LocalReplies.grpc(8, "rate limited", "id", 2, false);
    try {
      assertEquals("0", h1.headers().get("content-length"));
      assertEquals("2", h1.headers().get("retry-after"));
    } finally {
      h1.release();
    }
  }
}
