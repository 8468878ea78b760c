package dev.nodemesh.proxy.l4;

import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2ResetFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
import java.io.IOException;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Relays one TCP socket and one HBONE stream, the tunnel's counterpart of {@link RelaySession}:
 * both channels on one event loop with AUTO_READ off; a read is asked for only while the other side
 * is writable (the stream's writability follows its HTTP/2 send window, and the peer's window is
 * only returned as frames are read, so a slow reader slows the sender down end to end). Half-close
 * maps both ways: the socket's end of input becomes an empty DATA frame with END_STREAM, and the
 * stream's END_STREAM becomes {@code shutdownOutput} once everything before it is written (or, when
 * the socket's input has already ended, a close after the flush). When both directions have ended
 * both close; any error, or a reset from the peer, resets the stream (RST_STREAM) and the socket
 * (RST).
 */
public final class StreamRelay {
  private static final Logger log = LoggerFactory.getLogger(StreamRelay.class);

  /** What the relay reports: bytes each way, and its end. */
  public interface Listener {
    void bytes(boolean fromSocket, int count);

    void closed(@Nullable Throwable error);
  }

  private final Channel socket;
  private final Http2StreamChannel stream;
  private final Listener listener;
  private boolean socketInputDone;
  private boolean streamInputDone;
  private int directionsEnded;
  private boolean closed;

  private StreamRelay(Channel socket, Http2StreamChannel stream, Listener listener) {
    this.socket = socket;
    this.stream = stream;
    this.listener = listener;
  }

  /**
   * Joins {@code socket} and {@code stream} (both with AUTO_READ off, on the same event loop) and
   * starts reading. {@code early} holds bytes the socket sent before, written first; {@code
   * earlyEof} says the socket's input already ended. Call on the event loop.
   */
  public static StreamRelay start(
      Channel socket,
      Http2StreamChannel stream,
      ArrayDeque<ByteBuf> early,
      boolean earlyEof,
      Listener listener) {
    StreamRelay r = new StreamRelay(socket, stream, listener);
    socket.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
    socket.pipeline().addLast("relay", r.new SocketSide());
    stream.pipeline().addLast("relay", r.new StreamSide());
    ByteBuf b;
    while ((b = early.poll()) != null) {
      if (b.isReadable()) {
        listener.bytes(true, b.readableBytes());
        stream.write(new DefaultHttp2DataFrame(b), stream.voidPromise());
      } else {
        b.release();
      }
    }
    stream.flush();
    if (earlyEof) {
      r.socketEnded();
    } else {
      socket.read();
    }
    stream.read();
    return r;
  }

  private void socketEnded() {
    if (socketInputDone) {
      return;
    }
    socketInputDone = true;
    stream
        .writeAndFlush(new DefaultHttp2DataFrame(true))
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (f.isSuccess()) {
                    directionEnded();
                  } else {
                    fail(f.cause());
                  }
                });
  }

  private void streamEnded() {
    if (streamInputDone) {
      return;
    }
    streamInputDone = true;
    if (socketInputDone) {
      // The socket's input ended first, so this is the last direction: flush what is pending to
      // the socket and close it, as RelaySession does. The close sends the FIN a shutdownOutput
      // would (the socket's input is read to its end, so nothing unread turns it into an RST);
      // Netty's shutdownOutput builds a ChannelOutputShutdownException with a full stack trace
      // each time, and on the receiving node this is how nearly every stream ends (the app's
      // answer and FIN first, then the caller's END_STREAM).
      socket
          .writeAndFlush(Unpooled.EMPTY_BUFFER)
          .addListener(
              (ChannelFutureListener)
                  f -> {
                    if (!f.isSuccess()) {
                      fail(f.cause());
                      return;
                    }
                    socket.close();
                    directionEnded();
                  });
      return;
    }
    socket
        .writeAndFlush(Unpooled.EMPTY_BUFFER)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess() || !(socket instanceof DuplexChannel duplex)) {
                    fail(f.cause() != null ? f.cause() : new IOException("cannot half-close"));
                    return;
                  }
                  duplex
                      .shutdownOutput()
                      .addListener((ChannelFutureListener) s -> directionEnded());
                });
  }

  private void directionEnded() {
    if (++directionsEnded == 2 && !closed) {
      closed = true;
      // Both END_STREAMs are through: the codec has closed the stream, so closing its channel
      // sends nothing; the socket is fully shut down both ways.
      socket.close();
      stream.close();
      listener.closed(null);
    }
  }

  private boolean bothInputsDone() {
    return socketInputDone && streamInputDone;
  }

  void fail(@Nullable Throwable cause) {
    if (closed) {
      return;
    }
    closed = true;
    log.debug("tunnel relay {} <-> {} failed", socket, stream, cause);
    if (stream.isActive()) {
      stream.writeAndFlush(new DefaultHttp2ResetFrame(Http2Error.CANCEL));
    }
    stream.close();
    Relays.reset(socket);
    listener.closed(cause != null ? cause : new IOException("relay ended early"));
  }

  /** Bytes from the socket go out as DATA frames. */
  private final class SocketSide extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof ByteBuf buf) || !buf.isReadable() || closed) {
        ReferenceCountUtil.release(msg);
        return;
      }
      listener.bytes(true, buf.readableBytes());
      // A failed write surfaces as exceptionCaught on the stream, which fails the relay.
      stream.write(new DefaultHttp2DataFrame(buf), stream.voidPromise());
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      stream.flush();
      if (stream.isWritable() && !socketInputDone && !closed) {
        ctx.read();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (ctx.channel().isWritable() && !streamInputDone && !closed) {
        stream.read();
      }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        socketEnded();
        return;
      }
      ReferenceCountUtil.release(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      if (!closed && !bothInputsDone()) {
        fail(new IOException("socket closed before the stream ended"));
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      FatalErrors.check(cause);
      fail(cause);
    }
  }

  /** DATA frames from the stream go to the socket; END_STREAM half-closes it. */
  private final class StreamSide extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (closed) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof Http2DataFrame data) {
        ByteBuf content = data.content();
        if (content.isReadable()) {
          listener.bytes(false, content.readableBytes());
          socket.write(content, socket.voidPromise()); // the frame's buffer, ownership passed on
        } else {
          data.release();
        }
        if (data.isEndStream()) {
          streamEnded();
        }
      } else if (msg instanceof Http2HeadersFrame trailers) {
        if (trailers.isEndStream()) {
          streamEnded();
        }
      } else if (msg instanceof Http2ResetFrame rst) {
        fail(new IOException("stream reset by peer: " + rst.errorCode()));
      } else {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      socket.flush();
      if (socket.isWritable() && !streamInputDone && !closed) {
        ctx.read();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (ctx.channel().isWritable() && !socketInputDone && !closed) {
        socket.read();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      // The codec closes the stream once END_STREAM went both ways: that is the normal end.
      if (!closed && !bothInputsDone()) {
        fail(new IOException("stream closed before both directions ended"));
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      FatalErrors.check(cause);
      fail(cause);
    }
  }
}
