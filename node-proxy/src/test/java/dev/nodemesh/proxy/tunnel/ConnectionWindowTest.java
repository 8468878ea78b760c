package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2Settings;
import org.junit.jupiter.api.Test;

/** The windows a tunnel connection advertises: per stream from SETTINGS, per connection grown. */
class ConnectionWindowTest {
  @Test
  void theConnectionWindowIsGrownToTheSetting() throws Exception {
    TunnelSettings s = TunnelSettings.defaults();
    Http2FrameCodec codec =
        Http2FrameCodecBuilder.forClient()
            .initialSettings(Http2Settings.defaultSettings().initialWindowSize(s.streamWindow()))
            .build();
    EmbeddedChannel ch = new EmbeddedChannel(codec);
    try {
      Tunnel.growConnectionWindow(ch, s);
      Http2Connection c = codec.connection();
      assertEquals(
          16 << 20, c.local().flowController().windowSize(c.connectionStream()), "connection");
      // Local settings apply once the peer acknowledges them: its SETTINGS, then the ACK.
      ch.writeInbound(
          io.netty.buffer.Unpooled.wrappedBuffer(
              new byte[] {0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0}));
      assertEquals(4 << 20, c.local().flowController().initialWindowSize(), "per stream");
    } finally {
      ch.finishAndReleaseAll();
    }
  }
}
