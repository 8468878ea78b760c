package dev.nodemesh.proxy.drain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerKeepAliveHandler;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.util.ReferenceCountUtil;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class HttpDrainTest {
  private static EmbeddedChannel http1() {
    return new EmbeddedChannel(new HttpServerKeepAliveHandler(), HttpDrain.http1());
  }

  private static FullHttpResponse ok() {
    FullHttpResponse r = new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.OK);
    HttpUtil.setContentLength(r, 0);
    return r;
  }

  @Test
  void anIdleHttp1ConnectionClosesOnceIdleForThePeriod() {
    EmbeddedChannel ch = http1();
    ch.freezeTime();
    ch.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/"));
    ReferenceCountUtil.release(ch.readInbound());
    ch.writeOutbound(ok());
    ReferenceCountUtil.release(ch.readOutbound());
    assertTrue(ch.isOpen(), "kept alive before the drain");
    ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE);
    assertTrue(ch.isOpen(), "not closed under a request that may be on its way");
    ch.advanceTimeBy(HttpDrain.IDLE_BEFORE_CLOSE.toMillis() - 1, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen(), "still within the idle period");
    ch.advanceTimeBy(1, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertFalse(ch.isOpen(), "closed after a whole idle period");
  }

  @Test
  void aRequestWithinTheIdlePeriodIsAnsweredWithConnectionCloseNotCut() {
    EmbeddedChannel ch = http1();
    ch.freezeTime();
    ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE);
    ch.advanceTimeBy(HttpDrain.IDLE_BEFORE_CLOSE.toMillis() / 2, TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    // The client's next request, sent while the drain began.
    ch.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/next"));
    ReferenceCountUtil.release(ch.readInbound());
    ch.advanceTimeBy(HttpDrain.IDLE_BEFORE_CLOSE.toMillis(), TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen(), "the request in flight is answered, never cut");
    ch.writeOutbound(ok());
    FullHttpResponse r = ch.readOutbound();
    assertEquals(HttpHeaderValues.CLOSE.toString(), r.headers().get(HttpHeaderNames.CONNECTION));
    r.release();
    assertFalse(ch.isOpen(), "closed after the answer");
  }

  @Test
  void aConnectionKeptBusyIsClosedAfterItsFirstQuietPeriod() {
    EmbeddedChannel ch = http1();
    ch.freezeTime();
    ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE);
    // A request read and still being answered when the first period ends: checked again later.
    ch.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/slow"));
    ReferenceCountUtil.release(ch.readInbound());
    ch.advanceTimeBy(HttpDrain.IDLE_BEFORE_CLOSE.toMillis(), TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen());
    ch.advanceTimeBy(HttpDrain.IDLE_BEFORE_CLOSE.toMillis(), TimeUnit.MILLISECONDS);
    ch.runScheduledPendingTasks();
    assertTrue(ch.isOpen(), "never closed under a request being answered");
    ch.close();
  }

  @Test
  void aBusyHttp1ConnectionAnswersWithConnectionCloseThenCloses() {
    EmbeddedChannel ch = http1();
    ch.writeInbound(new DefaultFullHttpRequest(HttpVersion.HTTP_1_1, HttpMethod.GET, "/slow"));
    ReferenceCountUtil.release(ch.readInbound());
    ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE);
    assertTrue(ch.isOpen(), "the request in flight is answered first");
    FullHttpResponse continued =
        new DefaultFullHttpResponse(HttpVersion.HTTP_1_1, HttpResponseStatus.CONTINUE);
    ch.writeOutbound(continued);
    FullHttpResponse c = ch.readOutbound();
    assertFalse(c.headers().contains(HttpHeaderNames.CONNECTION), "1xx left alone");
    c.release();
    assertTrue(ch.isOpen());
    ch.writeOutbound(ok());
    FullHttpResponse r = ch.readOutbound();
    assertEquals(HttpHeaderValues.CLOSE.toString(), r.headers().get(HttpHeaderNames.CONNECTION));
    r.release();
    assertFalse(ch.isOpen(), "closed after the answer");
  }

  @Test
  void anHttp2ConnectionIsClosedOnDrainAndNotBefore() {
    EmbeddedChannel ch = new EmbeddedChannel(HttpDrain.http2());
    ch.pipeline().fireUserEventTriggered("something else");
    assertTrue(ch.isOpen());
    ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE);
    assertFalse(ch.isOpen());
  }
}
