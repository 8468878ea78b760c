package dev.nodemesh.proxy.l7;

import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.util.ReferenceCountUtil;
import org.jspecify.annotations.Nullable;

/**
 * Answers 400 to an h2c request whose {@code :method}, {@code :path} or {@code :authority} could
 * not stand in an HTTP/1.1 request line (a space, CR or LF in it), before Netty's HTTP/2 → HTTP/1.1
 * conversion sees it. That conversion ({@code HttpConversionUtil.toFullHttpRequest}, Netty 4.2.18)
 * allocates the request's content buffer before the request's constructor rejects such a target,
 * and never releases it: one leaked pooled buffer per request, which a client can repeat at will.
 * The fuzzer found it ({@code H2FramesFuzzTest}). HTTP/1.1 cannot carry such a target at all, so
 * the answer is the one that path gives a malformed request line. Sits first in each stream's
 * pipeline; shared, it holds no state.
 */
@ChannelHandler.Sharable
final class H2StartLineGuard extends ChannelInboundHandlerAdapter {
  static final H2StartLineGuard INSTANCE = new H2StartLineGuard();

  private H2StartLineGuard() {}

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Http2HeadersFrame frame && !fitsARequestLine(frame.headers())) {
      ReferenceCountUtil.release(msg);
      ctx.writeAndFlush(
          new DefaultHttp2HeadersFrame(
              new DefaultHttp2Headers().status(HttpResponseStatus.BAD_REQUEST.codeAsText()), true));
      return;
    }
    ctx.fireChannelRead(msg);
  }

  /** Whether every request-line field the conversion uses is free of SP, CR and LF. */
  static boolean fitsARequestLine(Http2Headers headers) {
    return safe(headers.method()) && safe(headers.path()) && safe(headers.authority());
  }

  private static boolean safe(@Nullable CharSequence value) {
    return value == null || HttpUtil.isEncodingSafeStartLineToken(value);
  }
}
