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
    return server(RequestHandlerTest.context());
  }

  /** The shared context with the default limits (16 KiB of headers, 100 fields). */
  private static RequestHandler.Context defaultLimits() {
    RequestHandler.Context c = RequestHandlerTest.context();
    return new RequestHandler.Context(
        c.plane(),
        c.source(),
        c.service(),
        c.servicePort(),
        c.dialled(),
        c.clientIp(),
        c.h2Downstream(),
        HttpLimits.DEFAULT,
        new RequestMeters());
  }

  private EmbeddedChannel server(RequestHandler.Context cx) throws Exception {
    EmbeddedChannel ch = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    ch.freezeTime(); // the connection timeouts run on the test's clock
    ch.pipeline().remove(ChannelInboundHandlerAdapter.class);
    HttpProxy.installH2(ch.pipeline(), cx);
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
    final List<String> statuses = new ArrayList<>();
    final List<Long> resetCodes = new ArrayList<>();

    @Override
    public void onHeadersRead(
        ChannelHandlerContext ctx, int id, Http2Headers h, int padding, boolean endStream) {
      headers++;
      if (h.status() != null) {
        statuses.add(id + ":" + h.status());
      }
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
      resetCodes.add(errorCode);
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
        RequestHandlerTest.context().limits().h2HeaderListSize(),
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
      // The codec's connection error stops at H2ConnectionErrors: EmbeddedChannel would
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

  // ---- header limits: 431 on the stream, never REFUSED_STREAM or GOAWAY, like HTTP/1.1 ----

  /** Sends one request on {@code id} with {@code h} and returns what the server answered. */
  private Seen request(EmbeddedChannel ch, DefaultHttp2FrameWriter w, int id, Http2Headers h)
      throws Exception {
    read(ch); // the server's preface and SETTINGS
    ch.writeInbound(frames(x -> w.writeHeaders(x.ctx, id, h, 0, true, x.promise())));
    ch.runPendingTasks();
    return read(ch);
  }

  private static DefaultHttp2FrameWriter unlimitedWriter() {
    // A client that ignores the advertised SETTINGS_MAX_HEADER_LIST_SIZE, as an attacker would.
    return new DefaultHttp2FrameWriter(
        io.netty.handler.codec.http2.Http2HeadersEncoder.NEVER_SENSITIVE, true);
  }

  @Test
  void aThousandSmallHeadersGet431OnTheStreamAsOverHttp1() throws Exception {
    EmbeddedChannel ch = server(defaultLimits());
    DefaultHttp2FrameWriter w = unlimitedWriter();
    Http2Headers h = get("/elsewhere");
    for (int i = 0; i < 1000; i++) {
      h.add("x-h" + i, "v"); // 8 KB as HTTP/1.1 lines: under the bytes, over the count
    }
    Seen seen = request(ch, w, 3, h);
    assertEquals(List.of("3:431"), seen.statuses);
    assertFalse(seen.resetCodes.contains((long) Http2Error.REFUSED_STREAM.code()));
    assertEquals(-1, seen.goAwayError);
    Seen next = request(ch, w, 5, get("/elsewhere"));
    assertEquals(List.of("5:404"), next.statuses, "the connection goes on");
  }

  @Test
  void aHeaderBlockOverTheByteLimitGets431() throws Exception {
    EmbeddedChannel ch = server(defaultLimits());
    DefaultHttp2FrameWriter w = unlimitedWriter();
    // 20 KiB: over the 16 KiB limit, under what HPACK decodes (64 KiB), so the proxy measures it.
    Seen seen = request(ch, w, 3, get("/elsewhere").add("x-big", "b".repeat(20 * 1024)));
    assertEquals(List.of("3:431"), seen.statuses);
    assertEquals(-1, seen.goAwayError);
    assertTrue(ch.isOpen());
  }

  @Test
  void a70KiBHeaderBlockGets431NotRefusedStream() throws Exception {
    EmbeddedChannel ch = server(defaultLimits());
    DefaultHttp2FrameWriter w = unlimitedWriter();
    // Past the decoder's list size (64 KiB) but not its GOAWAY limit: Netty's own 431.
    Seen seen = request(ch, w, 3, get("/elsewhere").add("x-big", "b".repeat(70 * 1024)));
    assertEquals(List.of("3:431"), seen.statuses);
    assertFalse(seen.resetCodes.contains((long) Http2Error.REFUSED_STREAM.code()));
    assertEquals(-1, seen.goAwayError);
    assertTrue(ch.isOpen());
    Seen next = request(ch, w, 5, get("/elsewhere"));
    assertEquals(List.of("5:404"), next.statuses, "HPACK state survived: the connection goes on");
  }

  // ---- timeouts: none before the first stream too long, none after the last too long ----

  private static void advance(EmbeddedChannel ch, long seconds) {
    ch.advanceTimeBy(seconds, java.util.concurrent.TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
  }

  private static double timeouts(String reason) {
    return RequestHandlerTest.context()
        .plane()
        .metrics()
        .registry()
        .counter(dev.nodemesh.proxy.transport.ConnectionTimeouts.METER, "reason", reason)
        .count();
  }

  @Test
  void aConnectionThatOpensNoStreamIsClosedAtTheHeaderTimeoutWithGoAway() throws Exception {
    double before = timeouts(dev.nodemesh.proxy.transport.ConnectionTimeouts.REQUEST_HEADER);
    EmbeddedChannel ch = server();
    read(ch);
    ch.writeInbound(frames(w -> writer.writePing(w.ctx, false, 1, w.promise())));
    advance(ch, 9);
    assertTrue(ch.isOpen(), "PINGs open no stream, but 9 s is within the timeout");
    advance(ch, 2);
    assertFalse(ch.isOpen(), "11 s without a request");
    assertEquals(Http2Error.NO_ERROR.code(), read(ch).goAwayError);
    assertEquals(
        before + 1, timeouts(dev.nodemesh.proxy.transport.ConnectionTimeouts.REQUEST_HEADER));
  }

  @Test
  void anOpenStreamKeepsTheConnectionAndTheIdleTimeoutRunsAfterTheLast() throws Exception {
    double before = timeouts(dev.nodemesh.proxy.transport.ConnectionTimeouts.HTTP_IDLE);
    EmbeddedChannel ch = server();
    read(ch);
    // A request whose body never ends: answered (404), but the stream stays open on the client's
    // side, so the connection is not idle however long it lasts.
    ch.writeInbound(
        frames(w -> writer.writeHeaders(w.ctx, 3, get("/elsewhere"), 0, false, w.promise())));
    advance(ch, 3600);
    assertTrue(ch.isOpen(), "a stream open for an hour: not idle");
    ch.writeInbound(
        frames(w -> writer.writeData(w.ctx, 3, Unpooled.EMPTY_BUFFER, 0, true, w.promise())));
    ch.runPendingTasks();
    advance(ch, 599);
    assertTrue(ch.isOpen());
    advance(ch, 2);
    assertFalse(ch.isOpen(), "10 min with no stream: the idle timeout");
    assertEquals(before + 1, timeouts(dev.nodemesh.proxy.transport.ConnectionTimeouts.HTTP_IDLE));
  }
}
