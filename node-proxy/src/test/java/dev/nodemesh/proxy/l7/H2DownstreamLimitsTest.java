package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.CompositeByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http2.DefaultHttp2FrameReader;
import io.netty.handler.codec.http2.DefaultHttp2FrameWriter;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameAdapter;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2Settings;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The h2c downstream's limits in an EmbeddedChannel: the SETTINGS it advertises, and a rapid-reset
 * flood (HEADERS then RST_STREAM, again and again) answered with GOAWAY on that connection only.
 * Requests go to a path with no route, so no upstream is ever opened.
 */
class H2DownstreamLimitsTest {
  private final List<EmbeddedChannel> channels = new ArrayList<>();
  private final DefaultHttp2FrameWriter writer = new DefaultHttp2FrameWriter();

  @AfterEach
  void tearDown() {
    for (EmbeddedChannel ch : channels) {
      ch.finishAndReleaseAll();
    }
  }

  @BeforeAll
  static void setUp(@TempDir Path dir) throws Exception {
    RequestHandlerTest.setUp(dir); // its config: a Service with a route, no endpoint opened
  }

  private EmbeddedChannel server() throws Exception {
    EmbeddedChannel ch = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    ch.pipeline().remove(ChannelInboundHandlerAdapter.class);
    HttpProxy.installH2(ch.pipeline(), RequestHandlerTest.context());
    channels.add(ch);
    ch.writeInbound(Http2CodecUtil.connectionPrefaceBuf());
    ch.writeInbound(frames(w -> writer.writeSettings(w.ctx, new Http2Settings(), w.promise())));
    return ch;
  }

  /** Frames the server wrote, decoded: settings seen and the GOAWAY's error code, if any. */
  private static final class Seen extends Http2FrameAdapter {
    Http2Settings settings;
    long goAwayError = -1;
    String goAwayDebug = "";
    int resets;
    int headers;

    @Override
    public void onHeadersRead(
        ChannelHandlerContext ctx, int id, Http2Headers h, int padding, boolean endStream) {
      headers++;
    }

    @Override
    public void onHeadersRead(
        ChannelHandlerContext ctx,
        int id,
        Http2Headers h,
        int dependency,
        short weight,
        boolean exclusive,
        int padding,
        boolean endStream) {
      headers++;
    }

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

    @Override
    public void onRstStreamRead(ChannelHandlerContext ctx, int streamId, long errorCode) {
      resets++;
    }
  }

  private final java.util.Map<EmbeddedChannel, DefaultHttp2FrameReader> readers =
      new java.util.HashMap<>();

  /** Reads what {@code server} wrote, with one HPACK decoder per connection as a client has. */
  private Seen read(EmbeddedChannel server) throws Exception {
    CompositeByteBuf all = Unpooled.compositeBuffer(Integer.MAX_VALUE);
    ByteBuf b;
    while ((b = server.readOutbound()) != null) {
      all.addComponent(true, b);
    }
    Seen seen = new Seen();
    EmbeddedChannel sink = new EmbeddedChannel();
    DefaultHttp2FrameReader reader =
        readers.computeIfAbsent(server, k -> new DefaultHttp2FrameReader());
    try {
      ChannelHandlerContext ctx = sink.pipeline().firstContext();
      if (ctx == null) {
        sink.pipeline().addLast(new ChannelInboundHandlerAdapter());
        ctx = sink.pipeline().firstContext();
      }
      while (all.isReadable()) {
        reader.readFrame(ctx, all, seen);
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

  /** Collects what DefaultHttp2FrameWriter writes into one buffer. */
  private static final class Writes {
    final EmbeddedChannel out = new EmbeddedChannel();
    final ChannelHandlerContext ctx;

    Writes() {
      out.pipeline().addLast(new ChannelInboundHandlerAdapter());
      ctx = out.pipeline().firstContext();
    }

    io.netty.channel.ChannelPromise promise() {
      return out.newPromise();
    }
  }

  private static ByteBuf frames(FrameWrites f) throws Exception {
    Writes w = new Writes();
    f.write(w);
    w.out.flush();
    CompositeByteBuf all = ByteBufAllocator.DEFAULT.compositeBuffer(Integer.MAX_VALUE);
    ByteBuf b;
    while ((b = w.out.readOutbound()) != null) {
      all.addComponent(true, b);
    }
    w.out.finishAndReleaseAll();
    return all;
  }

  private static Http2Headers get(String path) {
    return new DefaultHttp2Headers().method("GET").scheme("http").authority("web").path(path);
  }

  @Test
  void advertisesAStreamCapAndTheHeaderListLimit() throws Exception {
    EmbeddedChannel ch = server();
    Seen seen = read(ch);
    assertEquals(100L, seen.settings.maxConcurrentStreams());
    assertEquals(
        (long) RequestHandlerTest.context().limits().maxHeaderBytes(),
        seen.settings.maxHeaderListSize());
  }

  @Test
  void aRapidResetFloodGetsGoAwayAndLeavesTheOtherConnectionAlone() throws Exception {
    EmbeddedChannel attacker = server();
    EmbeddedChannel victim = server();
    read(attacker);
    read(victim);
    int streams = HttpProxy.MAX_RST_FRAMES_PER_WINDOW + 50;
    for (int i = 0; i < streams && attacker.isOpen(); i++) {
      // Stream 1 is left out: with no server parent channel the multiplexer takes it for an
      // upgrade.
      int id = 3 + 2 * i;
      ByteBuf pair =
          frames(
              w -> {
                writer.writeHeaders(w.ctx, id, get("/elsewhere"), 0, false, w.promise());
                writer.writeRstStream(w.ctx, id, Http2Error.CANCEL.code(), w.promise());
              });
      // The codec's connection error stops at HttpProxy.ConnectionErrors: EmbeddedChannel would
      // rethrow one that reached the pipeline's tail (which a real channel logs at WARN).
      attacker.writeInbound(pair);
      attacker.runPendingTasks();
    }
    Seen a = read(attacker);
    assertTrue(a.goAwayDebug.contains("RST frames"), a.goAwayDebug);
    assertEquals(Http2Error.ENHANCE_YOUR_CALM.code(), a.goAwayError);
    assertFalse(attacker.isOpen());

    DefaultHttp2FrameWriter victimWriter = new DefaultHttp2FrameWriter(); // its own HPACK state
    victim.writeInbound(
        frames(w -> victimWriter.writeHeaders(w.ctx, 3, get("/elsewhere"), 0, true, w.promise())));
    victim.runPendingTasks();
    Seen v = read(victim);
    assertEquals(-1, v.goAwayError);
    assertTrue(v.headers > 0, "the victim's request was answered");
    assertTrue(victim.isOpen());
  }
}
