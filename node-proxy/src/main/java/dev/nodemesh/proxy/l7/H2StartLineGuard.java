package dev.nodemesh.proxy.l7;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpHeaderValidationUtil;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.util.ReferenceCountUtil;

/**
 * Answers 400 to an h2c request head that Netty's HTTP/2 → HTTP/1.1 conversion cannot turn into a
 * request line, before the conversion sees it: no {@code :method}, or one that is not an RFC 9110
 * token (Netty's {@code HttpMethod} refuses it); no {@code :path} (or, for CONNECT, no {@code
 * :authority}); or a target with a space, CR or LF. That conversion ({@code
 * HttpConversionUtil.toFullHttpRequest}, Netty 4.2.18) allocates the request's content buffer first
 * and then throws on each of these without releasing it: one leaked pooled buffer per request,
 * which a client can repeat at will. The fuzzer found it ({@code H2FramesFuzzTest}). HTTP/1.1
 * cannot carry such a request at all, so the answer is the one that path gives a malformed request
 * line. One per stream, first in its pipeline: only the stream's first HEADERS is a request head (a
 * later one is its trailers).
 */
final class H2StartLineGuard extends ChannelInboundHandlerAdapter {
  private boolean headSeen;

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!headSeen && msg instanceof Http2HeadersFrame frame) {
      headSeen = true;
      if (!convertible(frame.headers())) {
        ReferenceCountUtil.release(msg);
        ctx.writeAndFlush(
            new DefaultHttp2HeadersFrame(
                new DefaultHttp2Headers().status(HttpResponseStatus.BAD_REQUEST.codeAsText()),
                true));
        return;
      }
    }
    ctx.fireChannelRead(msg);
  }

  /** Whether the conversion can make a request line of these headers without throwing. */
  static boolean convertible(Http2Headers headers) {
    CharSequence method = headers.method();
    if (method == null || !isToken(method)) {
      return false;
    }
    CharSequence target =
        HttpMethod.CONNECT.asciiName().contentEqualsIgnoreCase(method)
            ? headers.authority()
            : headers.path();
    return target != null && HttpUtil.isEncodingSafeStartLineToken(target);
  }

  /** What {@link HttpMethod#valueOf} accepts: a non-empty RFC 9110 token. */
  private static boolean isToken(CharSequence method) {
    return method.length() > 0 && HttpHeaderValidationUtil.validateToken(method) == -1;
  }
}
