package dev.nodemesh.proxy.l7;

import io.netty.buffer.Unpooled;
import io.netty.handler.codec.TooLongFrameException;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.handler.codec.http.TooLongHttpLineException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.ThreadLocalRandom;
import org.jspecify.annotations.Nullable;

/**
 * The answers the proxy writes itself, instead of an upstream's: a short plain-text HTTP response,
 * or for a gRPC client a trailers-only gRPC response (HTTP 200 with {@code grpc-status} in the only
 * HEADERS frame; the status from {@link GrpcStatuses#forLocalAnswer}). Building only: the exchange
 * decides when to answer and writes what is built here.
 */
public final class LocalReplies {
  private LocalReplies() {}

  /**
   * The proxy's own answer to {@code head} from a place outside an exchange (the HBONE server's
   * per-request policy): a trailers-only gRPC response with the status {@link
   * GrpcStatuses#forLocalAnswer} gives for {@code status} when a gRPC client sent a readable
   * request, as the exchange answers it; otherwise {@code status} in plain text (the connection
   * stays open). The request's {@code x-request-id} is kept, or one is made.
   */
  public static FullHttpResponse forRequest(
      HttpRequest head, HttpResponseStatus status, String why, boolean h2Downstream) {
    String id = head.headers().get("x-request-id");
    String requestId = id != null ? id : HeaderFilters.requestId(ThreadLocalRandom.current());
    if (head.decoderResult().isSuccess() && GrpcStatuses.isGrpc(head.headers())) {
      return grpc(
          GrpcStatuses.forLocalAnswer(status.code(), null), why, requestId, 0, h2Downstream);
    }
    return http(status, why, requestId, HttpMethod.HEAD.equals(head.method()), 0, false);
  }

  /** The status for a request the decoder could not read: 431, 414 or 400. */
  static HttpResponseStatus forMalformed(@Nullable Throwable cause) {
    if (cause instanceof TooLongHttpHeaderException) {
      return HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
    }
    if (cause instanceof TooLongHttpLineException) {
      return HttpResponseStatus.REQUEST_URI_TOO_LONG;
    }
    if (cause instanceof TooLongFrameException) {
      return HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
    }
    return HttpResponseStatus.BAD_REQUEST;
  }

  /**
   * {@code status} with the body "code why" (none for a HEAD request, whose Content-Length still
   * says what a GET would get).
   *
   * @param retryAfterSeconds a {@code retry-after} header when above 0 (rate limit)
   * @param close say {@code Connection: close} (HTTP/1.1 after a malformed request)
   */
  static FullHttpResponse http(
      HttpResponseStatus status,
      String why,
      String requestId,
      boolean headRequest,
      long retryAfterSeconds,
      boolean close) {
    byte[] body = (status.code() + " " + why + "\n").getBytes(StandardCharsets.UTF_8);
    FullHttpResponse resp =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1,
            status,
            headRequest ? Unpooled.EMPTY_BUFFER : Unpooled.wrappedBuffer(body));
    resp.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, "text/plain; charset=utf-8")
        .setInt(HttpHeaderNames.CONTENT_LENGTH, body.length)
        .set("x-request-id", requestId);
    if (retryAfterSeconds > 0) {
      resp.headers().set(HttpHeaderNames.RETRY_AFTER, retryAfterSeconds);
    }
    if (close) {
      resp.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    }
    return resp;
  }

  /**
   * A RequestRedirect's answer: {@code status} (301, 302, 303, 307 or 308) with {@code Location}
   * and an empty body, as Envoy answers a route's redirect.
   */
  static FullHttpResponse redirect(int status, String location, String requestId) {
    FullHttpResponse resp =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1, HttpResponseStatus.valueOf(status), Unpooled.EMPTY_BUFFER);
    resp.headers()
        .set(HttpHeaderNames.LOCATION, location)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, 0)
        .set("x-request-id", requestId);
    return resp;
  }

  /**
   * A trailers-only gRPC answer: HTTP 200, {@code grpc-status} and a percent-encoded {@code
   * grpc-message} (spaces only: the proxy's own messages are plain ASCII words).
   *
   * @param h2Downstream over HTTP/2 the HEADERS frame ends the stream; HTTP/1.1 needs a length
   */
  static FullHttpResponse grpc(
      int grpcStatus,
      String message,
      String requestId,
      long retryAfterSeconds,
      boolean h2Downstream) {
    FullHttpResponse resp =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled.EMPTY_BUFFER);
    resp.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, "application/grpc")
        .set("grpc-status", Integer.toString(grpcStatus))
        .set("grpc-message", message.replace(" ", "%20"))
        .set("x-request-id", requestId);
    if (retryAfterSeconds > 0) {
      resp.headers().set(HttpHeaderNames.RETRY_AFTER, retryAfterSeconds);
    }
    if (!h2Downstream) {
      resp.headers().setInt(HttpHeaderNames.CONTENT_LENGTH, 0);
    }
    return resp;
  }
}
