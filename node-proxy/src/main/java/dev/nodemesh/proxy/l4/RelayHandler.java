package dev.nodemesh.proxy.l4;

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
 * AUTO_READ off on the same event loop: a read is asked for only after the previous write has been
 * flushed, so a slow receiver slows the sender down instead of filling memory.
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
    if (!peer.isActive()) {
      buf.release();
      ctx.close();
      return;
    }
    session.countBytes(downstream, buf.readableBytes());
    peer.writeAndFlush(buf)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (f.isSuccess()) {
                    ctx.channel().read();
                  } else {
                    session.fail(f.cause());
                  }
                });
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
    session.fail(cause);
  }
}
