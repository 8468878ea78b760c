package dev.nodemesh.proxy.transport;

import io.micrometer.core.instrument.Counter;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2ConnectionAdapter;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Stream;
import java.time.Duration;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes an HTTP/2 connection that has no stream open for too long: the h2c downstream (before its
 * first stream: the request-header timeout; after its last: the idle timeout) and the HBONE server.
 * Added right after the {@link Http2FrameCodec}, it follows the codec's own stream count, so frames
 * that open no stream (PING, SETTINGS, a header block never finished) keep nothing alive, and a
 * stream that is open, however quiet, is never cut here (its own relay or request decides). The
 * close goes through the codec, which sends GOAWAY first. Timers run on the connection's event loop
 * (an {@code EmbeddedChannel}'s frozen clock in tests).
 */
public final class StreamlessTimeout extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(StreamlessTimeout.class);

  private final Duration first;
  private final Counter firstCounter;
  private final Duration idle;
  private final Counter idleCounter;
  // Streams coming and going (an h2c client's requests) move this deadline; the close goes
  // through the codec (ctx.close() from here), which sends GOAWAY first.
  private final MovingDeadline deadline = new MovingDeadline(StreamlessTimeout::expire);

  /**
   * @param first how long the connection may go before its first stream opens ({@code firstCounter}
   *     counts its firings)
   * @param idle how long it may go with no stream open after that ({@code idleCounter})
   */
  public StreamlessTimeout(
      Duration first, Counter firstCounter, Duration idle, Counter idleCounter) {
    this.first = first;
    this.firstCounter = firstCounter;
    this.idle = idle;
    this.idleCounter = idleCounter;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext ctx) {
    Http2FrameCodec codec = ctx.pipeline().get(Http2FrameCodec.class);
    if (codec == null) {
      throw new IllegalStateException("StreamlessTimeout goes after an Http2FrameCodec");
    }
    Http2Connection connection = codec.connection();
    connection.addListener(
        new Http2ConnectionAdapter() {
          @Override
          public void onStreamActive(Http2Stream stream) {
            deadline.disarm();
          }

          @Override
          public void onStreamClosed(Http2Stream stream) {
            if (connection.numActiveStreams() == 0) {
              deadline.arm(ctx, idle, idleCounter);
            }
          }
        });
    if (connection.numActiveStreams() == 0) {
      deadline.arm(ctx, first, firstCounter);
    }
  }

  private static void expire(ChannelHandlerContext ctx) {
    if (log.isDebugEnabled()) {
      Http2FrameCodec codec = ctx.pipeline().get(Http2FrameCodec.class);
      log.debug(
          "HTTP/2 connection {}: no stream open within its timeout, closing (preface read {}, last"
              + " stream {}, auto-read {})",
          ctx.channel(),
          codec != null && codec.decoder().prefaceReceived(),
          codec == null ? -1 : codec.connection().remote().lastStreamCreated(),
          ctx.channel().config().isAutoRead());
    }
    ctx.close();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    deadline.cancel();
    ctx.fireChannelInactive();
  }
}
