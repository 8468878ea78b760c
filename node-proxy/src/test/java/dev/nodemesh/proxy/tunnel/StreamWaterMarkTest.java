package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.util.concurrent.Future;
import org.junit.jupiter.api.Test;

/**
 * A CONNECT stream's writability with {@link Tunnel#STREAM_WATER_MARK}: the relay reads its socket
 * only while the stream is writable, so this is what bounds the bytes one stream holds when its
 * peer takes nothing (here: no window beyond the initial 64 KiB, nothing flushed).
 */
class StreamWaterMarkTest {
  private static final int READ = 64 << 10; // the largest socket read of a relay

  @Test
  void aStreamTakesOneReadUnsentAndStopsAtTheSecond() throws Exception {
    EmbeddedChannel parent =
        new EmbeddedChannel(
            Http2FrameCodecBuilder.forClient().build(),
            new Http2MultiplexHandler(
                new ChannelInitializer<Http2StreamChannel>() {
                  @Override
                  protected void initChannel(Http2StreamChannel unexpected) {}
                }));
    try {
      Future<Http2StreamChannel> opened =
          new Http2StreamChannelBootstrap(parent)
              .option(ChannelOption.AUTO_READ, false)
              .option(ChannelOption.WRITE_BUFFER_WATER_MARK, Tunnel.STREAM_WATER_MARK)
              .handler(new ChannelInboundHandlerAdapter())
              .open();
      parent.runPendingTasks();
      Http2StreamChannel stream = opened.get();
      stream.writeAndFlush(
          new DefaultHttp2HeadersFrame(
              new DefaultHttp2Headers().method("CONNECT").authority("x:1")));
      parent.runPendingTasks();
      assertTrue(stream.isWritable(), "open");
      stream.write(new DefaultHttp2DataFrame(Unpooled.directBuffer(READ).writeZero(READ)));
      parent.runPendingTasks();
      assertTrue(stream.isWritable(), "one read unsent (Netty's 64 KiB default stopped here)");
      stream.write(new DefaultHttp2DataFrame(Unpooled.directBuffer(READ).writeZero(READ)));
      parent.runPendingTasks();
      assertFalse(stream.isWritable(), "a second read unsent passes 128 KiB: the relay stops");
    } finally {
      parent.finishAndReleaseAll();
    }
  }
}
