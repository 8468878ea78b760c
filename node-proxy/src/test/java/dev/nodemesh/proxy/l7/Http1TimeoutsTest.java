package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The HTTP/1.1 request-header and idle timeouts on an EmbeddedChannel with a frozen clock: a server
 * that holds each request until the test answers it, so "in flight" is in the test's hands.
 */
class Http1TimeoutsTest {
  private static final ConnectionTimeouts TIMEOUTS =
      new ConnectionTimeouts(
          Duration.ofSeconds(10),
          Duration.ofSeconds(600),
          Duration.ofHours(1),
          Duration.ofSeconds(60),
          Duration.ofSeconds(10),
          Duration.ofSeconds(5));

  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final List<EmbeddedChannel> channels = new ArrayList<>();
  private final List<HttpRequest> held = new ArrayList<>();

  @AfterEach
  void tearDown() {
    for (EmbeddedChannel ch : channels) {
      ch.finishAndReleaseAll();
    }
  }

  /** The pipeline as installHttp1 has it around the codec, then a server holding requests. */
  private EmbeddedChannel server() {
    EmbeddedChannel ch = new EmbeddedChannel();
    ch.freezeTime();
    Http1Timeouts t = new Http1Timeouts(TIMEOUTS, registry);
    ch.pipeline()
        .addLast(
            t.bytes,
            new HttpServerCodec(),
            t.heads,
            new ChannelInboundHandlerAdapter() {
              @Override
              public void channelRead(ChannelHandlerContext ctx, Object msg) {
                if (msg instanceof HttpRequest r) {
                  held.add(r);
                }
                ReferenceCountUtil.release(msg);
              }
            });
    channels.add(ch);
    return ch;
  }

  private static void send(EmbeddedChannel ch, String raw) {
    ch.writeInbound(Unpooled.copiedBuffer(raw, StandardCharsets.ISO_8859_1));
  }

  private static void advance(EmbeddedChannel ch, long seconds) {
    ch.advanceTimeBy(seconds, TimeUnit.SECONDS);
    ch.runScheduledPendingTasks();
  }

  private static void answer(EmbeddedChannel ch) {
    ch.writeOutbound(new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK));
    Object o;
    while ((o = ch.readOutbound()) != null) {
      ReferenceCountUtil.release(o);
    }
  }

  private double count(String reason) {
    return registry.counter(ConnectionTimeouts.METER, "reason", reason).count();
  }

  @Test
  void aHeadTrickledPastTheHeaderTimeoutIsClosedAndCounted() {
    EmbeddedChannel ch = server(); // installed once the first bytes arrived
    send(ch, "GET /x HTTP/1.1\r\n");
    advance(ch, 5);
    send(ch, "Host: w");
    advance(ch, 4);
    assertTrue(ch.isOpen(), "9 s: still within the header timeout");
    advance(ch, 2);
    assertFalse(ch.isOpen(), "11 s without a complete head");
    assertEquals(1.0, count(ConnectionTimeouts.REQUEST_HEADER));
    assertEquals(0.0, count(ConnectionTimeouts.HTTP_IDLE));
  }

  @Test
  void aRequestInFlightIsNeverCutHoweverLong() {
    EmbeddedChannel ch = server();
    send(ch, "GET /x HTTP/1.1\r\nHost: w\r\n\r\n");
    assertEquals(1, held.size());
    advance(ch, 3600);
    assertTrue(ch.isOpen(), "an hour waiting for the response: not idle");
    answer(ch);
    advance(ch, 599);
    assertTrue(ch.isOpen());
    advance(ch, 2);
    assertFalse(ch.isOpen(), "10 min with nothing in flight: the idle timeout");
    assertEquals(1.0, count(ConnectionTimeouts.HTTP_IDLE));
    assertEquals(0.0, count(ConnectionTimeouts.REQUEST_HEADER));
  }

  @Test
  void anIdleKeepAliveConnectionGetsTheHeaderTimeoutFromTheNextHeadsFirstByte() {
    EmbeddedChannel ch = server();
    send(ch, "GET /a HTTP/1.1\r\nHost: w\r\n\r\n");
    answer(ch);
    advance(ch, 300);
    send(ch, "GET /b HTTP/1.1\r\n"); // the idle timer gives way to the header timer
    advance(ch, 9);
    assertTrue(ch.isOpen());
    send(ch, "Host: w\r\n\r\n");
    assertEquals(2, held.size());
    advance(ch, 1000);
    assertTrue(ch.isOpen(), "in flight again");
    answer(ch);
    send(ch, "GET /c HTTP/1.1\r\n");
    advance(ch, 11);
    assertFalse(ch.isOpen());
    assertEquals(1.0, count(ConnectionTimeouts.REQUEST_HEADER));
  }

  @Test
  void pipelinedRequestsKeepTheConnectionBusyUntilTheLastAnswer() {
    EmbeddedChannel ch = server();
    send(ch, "GET /a HTTP/1.1\r\nHost: w\r\n\r\nGET /b HTTP/1.1\r\nHost: w\r\n\r\n");
    assertEquals(2, held.size());
    answer(ch);
    advance(ch, 1000);
    assertTrue(ch.isOpen(), "the second request is still in flight");
    answer(ch);
    advance(ch, 601);
    assertFalse(ch.isOpen());
  }
}
