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
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * Turns a {@link DrainEvent} into the end of a downstream HTTP connection without cutting a
 * request: {@link #http1()} makes the next response of an HTTP/1 connection say {@code Connection:
 * close} and closes the connection once it has stayed idle for {@link #IDLE_BEFORE_CLOSE}; {@link
 * #http2()} closes an HTTP/2 connection, which Netty's HTTP/2 codec does gracefully (GOAWAY, then
 * the close once the open streams ended).
 *
 * <p>Why not close an idle HTTP/1 connection at once: HTTP/1 has no GOAWAY, so a client may be
 * writing its next request while the close is on its way, and that request fails (a kept-alive
 * client at a fixed rate sends every few milliseconds, so an upgrade would hit it). A client that
 * sends within the idle period gets its answer with {@code Connection: close} instead and
 * reconnects, to the new proxy during an upgrade. Only a connection idle for the whole period is
 * closed, where the race needs a client that stays silent for a second and then sends at that very
 * moment.
 */
public final class HttpDrain {
  /** How long an HTTP/1 connection must stay without a request, once draining, to be closed. */
  public static final Duration IDLE_BEFORE_CLOSE = Duration.ofSeconds(1);

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
    private long requests;
    private boolean draining;

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof HttpRequest) {
        inFlight++;
        requests++;
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
      if (evt == DrainEvent.INSTANCE && !draining) {
        draining = true;
        closeWhenIdle(ctx, requests);
      }
      ctx.fireUserEventTriggered(evt);
    }

    /** Closes the connection if no request came in the period after {@code seen} requests. */
    private void closeWhenIdle(ChannelHandlerContext ctx, long seen) {
      ctx.executor()
          .schedule(
              () -> {
                if (!ctx.channel().isActive()) {
                  return;
                }
                if (inFlight == 0 && requests == seen) {
                  ctx.close();
                } else {
                  closeWhenIdle(ctx, requests);
                }
              },
              IDLE_BEFORE_CLOSE.toNanos(),
              TimeUnit.NANOSECONDS);
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
