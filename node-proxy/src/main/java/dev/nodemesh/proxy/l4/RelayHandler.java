package dev.nodemesh.proxy.l4;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.util.ReferenceCountUtil;

/**
 * Moves bytes from one channel to its peer, one direction of an L4 relay. Both channels run with
 * AUTO_READ off on the same event loop: after each read burst the bytes are flushed to the peer and
 * the next read is asked for only while the peer is writable (below its high-water mark); when it
 * drains, its writability event asks for the read. A slow receiver slows the sender down instead of
 * filling memory, and the hot path allocates no future or listener per read.
 *
 * <p>Half-close: when this side's input ends, the peer's output is shut down after pending writes
 * flush; the pair closes once both directions have ended. Any error closes both sides.
 */
final class RelayHandler extends ChannelInboundHandlerAdapter {
  private final Channel peer;
  private final RelaySession session;
  private final boolean downstream;
  private boolean inputDone;
  private boolean finished;

  RelayHandler(Channel peer, RelaySession session, boolean downstream) {
    this.peer = peer;
    this.session = session;
    this.downstream = downstream;
  }

  boolean inputDone() {
    return inputDone;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (!(msg instanceof ByteBuf buf)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    session.countBytes(downstream, buf.readableBytes());
    // A failed write surfaces as exceptionCaught on the peer, which closes the pair; a void
    // promise keeps the hot path free of a future and a listener per read.
    peer.write(buf, peer.voidPromise());
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext ctx) {
    peer.flush();
    // Back-pressure: read on only while the peer keeps up; channelWritabilityChanged on the
    // peer's handler resumes us when its buffer drains below the low-water mark.
    if (peer.isWritable() && !inputDone) {
      ctx.read();
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (ctx.channel().isWritable() && peer.isActive()) {
      peer.read();
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent) {
      inputDone = true;
      if (ctx.channel() instanceof DuplexChannel self && self.isOutputShutdown()) {
        // Both directions of this socket are over: close it now rather than keep an idle,
        // fully shut-down socket registered while the peer's last writes drain.
        finished = true;
        ctx.close();
      }
      if (session.otherInputDone(downstream)) {
        // The peer's input ended first, so this was the last direction: flush what is pending to
        // the peer and close both (the close sends the FIN a shutdownOutput would). Netty's
        // shutdownOutput builds a ChannelOutputShutdownException with a full stack trace each
        // time, and this is the end of nearly every connection.
        session.closeBoth("both directions ended");
        return;
      }
      // Pass the end of stream on once everything read before it has been written.
      peer.writeAndFlush(Unpooled.EMPTY_BUFFER)
          .addListener(
              (ChannelFutureListener)
                  f -> {
                    if (!f.isSuccess() || !(peer instanceof DuplexChannel duplex)) {
                      session.closeBoth("end of stream could not be passed on");
                      return;
                    }
                    duplex
                        .shutdownOutput()
                        .addListener((ChannelFutureListener) s -> session.halfClosed());
                  });
      return;
    }
    ReferenceCountUtil.release(evt);
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    if (finished) {
      return;
    }
    session.closeBoth(downstream ? "downstream closed" : "upstream closed");
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    session.fail(downstream, cause);
  }
}
