package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2FrameReader;
import io.netty.handler.codec.http2.DefaultHttp2FrameWriter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameAdapter;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The HTTP/2 side of an HBONE server connection (after TLS, which an EmbeddedChannel leaves out):
 * the same stream cap and rapid-reset and CONTINUATION-flood defences as the h2c downstream, and
 * the no-stream idle timeout, on a frozen clock. Streams are accepted and left open (no CONNECT
 * handling: the codec's limits are what is under test).
 */
class HboneServerLimitsTest {
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final Counter idle = ConnectionTimeouts.counter(registry, ConnectionTimeouts.TUNNEL_IDLE);
  private final DefaultHttp2FrameWriter writer = new DefaultHttp2FrameWriter();
  private final DefaultHttp2FrameReader reader = new DefaultHttp2FrameReader();
  private final List<EmbeddedChannel> channels = new ArrayList<>();

  @AfterEach
  void tearDown() {
    for (EmbeddedChannel ch : channels) {
      ch.finishAndReleaseAll();
    }
  }

  private EmbeddedChannel server() throws Exception {
    TunnelSettings s = TunnelSettings.defaults();
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.freezeTime();
    // The server's own HTTP/2 pipeline, H2ConnectionErrors last: EmbeddedChannel rethrows any
    // exception that reaches the pipeline's tail (where a real channel logs it at WARN), so every
    // test here also proves that none does.
    HboneServer.addH2(
        ch.pipeline(),
        s,
        idle,
        new ChannelInitializer<Http2StreamChannel>() {
          @Override
          protected void initChannel(Http2StreamChannel stream) {}
        });
    channels.add(ch);
    ch.writeInbound(Http2CodecUtil.connectionPrefaceBuf());
    ch.writeInbound(frames(w -> writer.writeSettings(w.ctx, new Http2Settings(), w.promise())));
    return ch;
  }

  /** What the server wrote: its first SETTINGS and the GOAWAY's error code and text, if any. */
  private static final class Seen extends Http2FrameAdapter {
    Http2Settings settings;
    long goAwayError = -1;
    String goAwayDebug = "";

    @Override
    public void onSettingsRead(ChannelHandlerContext ctx, Http2Settings s) {
      if (settings == null) {
        settings = s;
      }
    }

    @Override
    public void onGoAwayRead(ChannelHandlerContext ctx, int last, long errorCode, ByteBuf debug) {
      goAwayError = errorCode;
      goAwayDebug = debug.toString(java.nio.charset.StandardCharsets.UTF_8);
    }
  }

  private Seen read(EmbeddedChannel server) throws Exception {
    CompositeByteBuf all = Unpooled.compositeBuffer(Integer.MAX_VALUE);
    ByteBuf b;
    while ((b = server.readOutbound()) != null) {
      all.addComponent(true, b);
    }
    Seen seen = new Seen();
    EmbeddedChannel sink = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    try {
      while (all.isReadable()) {
        reader.readFrame(sink.pipeline().firstContext(), all, seen);
      }
    } finally {
      all.release();
      sink.finishAndReleaseAll();
    }
    return seen;
  }

  private interface FrameWrites {
    void write(Writes w) throws Exception;
  }

  private static final class Writes {
    final EmbeddedChannel out = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    final ChannelHandlerContext ctx = out.pipeline().firstContext();

    io.netty.channel.ChannelPromise promise() {
      return out.newPromise();
    }
  }

  private static ByteBuf frames(FrameWrites f) throws Exception {
    Writes w = new Writes();
    f.write(w);
    w.out.flush();
    CompositeByteBuf all = Unpooled.compositeBuffer(Integer.MAX_VALUE);
    ByteBuf b;
    while ((b = w.out.readOutbound()) != null) {
      all.addComponent(true, b);
    }
    w.out.finishAndReleaseAll();
    return all;
  }

  private static Http2Headers connect() {
    return new DefaultHttp2Headers().method("CONNECT").authority("10.1.0.11:80");
  }

  /** Writes {@code frames}; an exception reaching the pipeline's tail is rethrown (a failure). */
  private static void feed(EmbeddedChannel ch, ByteBuf frames) {
    if (ch.isOpen()) {
      ch.writeInbound(frames);
      ch.runPendingTasks();
    } else {
      frames.release();
    }
  }

  @Test
  void advertisesTheDownstreamStreamCap() throws Exception {
    assertEquals(100L, read(server()).settings.maxConcurrentStreams());
  }

  @Test
  void aRapidResetFloodGetsGoAway() throws Exception {
    EmbeddedChannel ch = server();
    read(ch);
    for (int i = 0; i < HboneServer.MAX_RST_FRAMES_PER_WINDOW + 50 && ch.isOpen(); i++) {
      int id = 3 + 2 * i;
      feed(
          ch,
          frames(
              w -> {
                writer.writeHeaders(w.ctx, id, connect(), 0, false, w.promise());
                writer.writeRstStream(w.ctx, id, Http2Error.CANCEL.code(), w.promise());
              }));
    }
    Seen seen = read(ch);
    assertTrue(seen.goAwayDebug.contains("RST frames"), seen.goAwayDebug);
    assertEquals(Http2Error.ENHANCE_YOUR_CALM.code(), seen.goAwayError);
    assertFalse(ch.isOpen());
  }

  @Test
  void aContinuationFloodIsAConnectionError() throws Exception {
    EmbeddedChannel ch = server();
    read(ch);
    // HEADERS without END_HEADERS (one indexed field, :method GET), then empty CONTINUATIONs.
    ByteBuf flood = Unpooled.buffer();
    frameHeader(flood, 1, 0x1, 0, 3);
    flood.writeByte(0x82);
    for (int i = 0; i < HboneServer.MAX_SMALL_CONTINUATION_FRAMES + 10 && ch.isOpen(); i++) {
      ByteBuf c = Unpooled.buffer();
      frameHeader(c, 0, 0x9, 0, 3);
      feed(ch, i == 0 ? Unpooled.wrappedBuffer(flood, c) : c);
    }
    assertTrue(read(ch).goAwayError > 0, "GOAWAY with an error");
    assertFalse(ch.isOpen());
  }

  @Test
  void aPeerThatResetsItsConnectionClosesItWithoutReachingThePipelinesTail() throws Exception {
    EmbeddedChannel ch = server();
    read(ch);
    // What epoll reports when the client's socket is reset, e.g. a client pool closing a tunnel
    // with bytes unread: before H2ConnectionErrors it reached the tail, one WARN per connection.
    ch.pipeline().fireExceptionCaught(new java.io.IOException("Connection reset by peer"));
    ch.runPendingTasks();
    ch.checkException(); // nothing reached the tail
    assertFalse(ch.isOpen());
  }

  private static void frameHeader(ByteBuf b, int length, int type, int flags, int stream) {
    b.writeMedium(length);
    b.writeByte(type);
    b.writeByte(flags);
    b.writeInt(stream);
  }

  @Test
  void aServerConnectionWithNoStreamClosesAfterTwiceTheClientIdleTimeout() throws Exception {
    EmbeddedChannel ch = server();
    read(ch);
    ch.writeInbound(frames(w -> writer.writeHeaders(w.ctx, 3, connect(), 0, false, w.promise())));
    ch.advanceTimeBy(1, TimeUnit.HOURS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen(), "a stream open for an hour, however quiet, keeps the connection");
    ch.writeInbound(frames(w -> writer.writeRstStream(w.ctx, 3, 8, w.promise())));
    ch.runPendingTasks();
    ch.advanceTimeBy(Duration.ofSeconds(119).toSeconds(), TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen());
    ch.advanceTimeBy(2, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
    assertFalse(ch.isOpen(), "120 s with no stream: twice the client's 60 s");
    assertEquals(Http2Error.NO_ERROR.code(), read(ch).goAwayError);
    assertEquals(1.0, idle.count());
  }
}
