package dev.nodemesh.proxy.tunnel;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelPromise;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;

/**
 * Makes a CONNECT stream look like a socket to the handlers after it, so a protocol codec (HTTP/1.1
 * or HTTP/2 client) can run inside the tunnel: DATA frames in become {@link ByteBuf}s, buffers
 * written become DATA frames. The peer ending its side (END_STREAM) or resetting the stream closes
 * the channel, as a server closing its connection would; closing the channel resets the stream.
 * Flow control is the stream's own (its window is returned as the frames are read, and its
 * writability follows the peer's window).
 */
public final class StreamBytes extends ChannelDuplexHandler {
  static final String NAME = "hbone-stream-bytes";

  private StreamBytes() {}

  /**
   * Puts the adapter first in {@code stream}'s pipeline (answered 200, no other handler yet) and
   * returns the stream as a byte channel. Reads stay off until the caller turns auto-read on.
   */
  public static Channel install(Http2StreamChannel stream) {
    stream.pipeline().addFirst(NAME, new StreamBytes());
    return stream;
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Http2DataFrame data) {
      boolean end = data.isEndStream();
      ByteBuf content = data.content();
      if (content.isReadable()) {
        ctx.fireChannelRead(content); // the frame's buffer, ownership passed on
      } else {
        data.release();
      }
      if (end) {
        ctx.close();
      }
      return;
    }
    boolean end = msg instanceof Http2HeadersFrame h && h.isEndStream();
    ReferenceCountUtil.release(msg);
    if (end) {
      ctx.close();
    }
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
    if (evt instanceof Http2ResetFrame) {
      ctx.close();
      return;
    }
    ctx.fireUserEventTriggered(evt);
  }

  @Override
  public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
    if (msg instanceof ByteBuf buf) {
      ctx.write(new DefaultHttp2DataFrame(buf), promise);
      return;
    }
    ctx.write(msg, promise);
  }
}
