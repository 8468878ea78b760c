package dev.nodemesh.proxy.tunnel;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.util.ReferenceCountUtil;

/**
 * Waits for the answer to a CONNECT on a client stream: {@code :status 200} hands the stream to the
 * relay (this handler leaves the pipeline first); any other status, a reset, DATA before HEADERS or
 * the stream closing is a refusal. Reports exactly once.
 */
final class ConnectResponseHandler extends ChannelInboundHandlerAdapter {
  /** Told whether the tunnel stream is open for bytes. */
  interface Outcome {
    void answered(boolean ok);
  }

  private final Outcome outcome;
  private boolean done;

  ConnectResponseHandler(Outcome outcome) {
    this.outcome = outcome;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    boolean ok =
        msg instanceof Http2HeadersFrame h
            && !h.isEndStream()
            && h.headers().status() != null
            && "200".contentEquals(h.headers().status());
    ReferenceCountUtil.release(msg);
    if (ok) {
      done = true;
      ctx.pipeline().remove(this);
      outcome.answered(true);
    } else {
      finish(ctx, false);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    finish(ctx, false);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    finish(ctx, false);
  }

  private void finish(ChannelHandlerContext ctx, boolean ok) {
    if (done) {
      return;
    }
    done = true;
    ctx.close();
    outcome.answered(ok);
  }
}
