package dev.nodemesh.proxy.drain;

import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.LastHttpContent;

/**
 * Turns a {@link DrainEvent} into the end of a downstream HTTP connection without cutting a
 * request: {@link #http1()} closes an idle HTTP/1 connection at once and makes the next response of
 * a busy one say {@code Connection: close}; {@link #http2()} closes an HTTP/2 connection, which
 * Netty's HTTP/2 codec does gracefully (GOAWAY, then the close once the open streams ended).
 */
public final class HttpDrain {
  private HttpDrain() {}

  /** Goes after {@code HttpServerKeepAliveHandler}, so that handler sees the close it sets. */
  public static ChannelDuplexHandler http1() {
    return new Http1();
  }

  /** Goes first in the pipeline of an HTTP/2 connection, before the frame codec. */
  public static ChannelInboundHandlerAdapter http2() {
    return new Http2();
  }

  private static final class Http1 extends ChannelDuplexHandler {
    private int inFlight;
    private boolean draining;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof HttpRequest) {
        inFlight++;
      }
      ctx.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      boolean informational =
          msg instanceof HttpResponse r && r.status().codeClass() == HttpStatusClass.INFORMATIONAL;
      if (draining && msg instanceof HttpResponse r && !informational) {
        HttpUtil.setKeepAlive(r, false);
      }
      if (msg instanceof LastHttpContent && !informational && inFlight > 0) {
        inFlight--;
      }
      ctx.write(msg, promise);
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt == DrainEvent.INSTANCE) {
        draining = true;
        if (inFlight == 0) {
          ctx.close();
        }
      }
      ctx.fireUserEventTriggered(evt);
    }
  }

  private static final class Http2 extends ChannelInboundHandlerAdapter {
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt == DrainEvent.INSTANCE) {
        ctx.channel().close();
      }
      ctx.fireUserEventTriggered(evt);
    }
  }
}
