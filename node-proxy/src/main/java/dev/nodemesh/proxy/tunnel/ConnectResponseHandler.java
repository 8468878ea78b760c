package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.util.ReferenceCountUtil;

/**
 * Waits for the answer to a CONNECT on a client stream: {@code :status 200} hands the stream to the
 * relay (this handler leaves the pipeline first); RST_STREAM with REFUSED_STREAM, or a GOAWAY whose
 * last stream id is below this stream's, says the server did not process it (safe to try again on
 * another connection); any other status, reset, DATA before HEADERS or the stream closing is a
 * failure. Reports exactly once.
 */
final class ConnectResponseHandler extends ChannelInboundHandlerAdapter {
  /** How the server answered. */
  enum Answer {
    /** 200: the stream is open for bytes. */
    OK,
    /** RST_STREAM REFUSED_STREAM: not processed, may be retried on another connection. */
    REFUSED,
    /** Anything else. */
    FAILED
  }

  /** Told how the CONNECT was answered. */
  interface Outcome {
    void answered(Answer answer);
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
      outcome.answered(Answer.OK);
    } else {
      finish(ctx, Answer.FAILED);
    }
  }

  /** Netty's multiplexer hands RST_STREAM to the stream as a user event, not a read. */
  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof Http2ResetFrame r) {
      finish(
          ctx, r.errorCode() == Http2Error.REFUSED_STREAM.code() ? Answer.REFUSED : Answer.FAILED);
      return;
    }
    if (evt instanceof Http2GoAwayFrame g) {
      // Netty tells streams above the GOAWAY's last stream id: the server never processed them.
      g.release();
      finish(ctx, Answer.REFUSED);
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    finish(ctx, Answer.FAILED);
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    finish(ctx, Answer.FAILED);
  }

  private void finish(ChannelHandlerContext ctx, Answer answer) {
    if (done) {
      return;
    }
    done = true;
    ctx.close();
    outcome.answered(answer);
  }
}
