package dev.nodemesh.proxy.l4;

import io.netty.buffer.ByteBuf;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.util.ReferenceCountUtil;
import java.util.ArrayDeque;

/**
 * Holds what a client sent before the upstream connection was ready. Reads are off until then, but
 * a transport may still read once on its own (epoll does when the peer half-closes early), so a
 * client that writes and shuts down at once must not lose its bytes or its end of stream. Public
 * for the tunnel's client path, which waits for its stream the same way.
 */
public final class EarlyData extends ChannelInboundHandlerAdapter {
  public static final String NAME = "early-data";

  private final ArrayDeque<ByteBuf> buffered = new ArrayDeque<>();
  private boolean inputShutdown;

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof ByteBuf b) {
      buffered.add(b);
    } else {
      ReferenceCountUtil.release(msg);
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent) {
      inputShutdown = true;
    } else {
      ReferenceCountUtil.release(evt);
    }
  }

  public ArrayDeque<ByteBuf> drain() {
    ArrayDeque<ByteBuf> out = new ArrayDeque<>(buffered);
    buffered.clear();
    return out;
  }

  public boolean inputShutdown() {
    return inputShutdown;
  }

  @Override
  public void handlerRemoved(ChannelHandlerContext ctx) {
    release();
  }

  void release() {
    ByteBuf b;
    while ((b = buffered.poll()) != null) {
      b.release();
    }
  }
}
