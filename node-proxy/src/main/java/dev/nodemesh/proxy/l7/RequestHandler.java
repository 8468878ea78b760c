package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.l7.resilience.TrafficState;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.DecoderResult;
import io.netty.handler.codec.http.DefaultLastHttpContent;
import io.netty.handler.codec.http.FullHttpMessage;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http.TooLongHttpHeaderException;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The downstream side of one HTTP/1.1 connection, or of one HTTP/2 stream (behind {@code
 * Http2StreamFrameToHttpObjectCodec}, so both look the same here): one {@link Exchange} per
 * request, one request at a time. Everything about a request (routing, the route's layers, tries,
 * the response) is the exchange's; this handler owns the connection: reads, HTTP/1.1 pipelining,
 * flush batching and back-pressure. Everything runs on the downstream channel's event loop.
 *
 * <p>Errors: no route 404, bad backend 500, no endpoint or upstream unreachable 503, upstream reset
 * 502, timeout 504, malformed request 400 (414 line too long, 431 headers too large), each closing
 * only this connection or stream.
 *
 * <p>Flushes are batched per read: what a downstream read produces for the upstream is flushed at
 * the downstream's read complete (a request head and its end go out in one write), and a response
 * is flushed when it ends or when the upstream read that produced part of it completes. Writes made
 * outside a read (a dial completing, a timer) are flushed at once.
 *
 * <p>HTTP/1.1 pipelining: requests that arrive while one is being answered are queued and reading
 * stops until the answer is complete. Back-pressure: reading a side stops while the other side is
 * not writable.
 *
 * <p>Half-close: the in-pod listener's sockets allow half-closure (the L4 relay forwards a FIN), so
 * a client's FIN arrives here as {@link ChannelInputShutdownEvent}, not as a close. Nothing more
 * can be asked on an HTTP/1.1 connection whose client has shut its side, so it is closed once the
 * requests already read are answered (at once when none is), and never left in CLOSE-WAIT. A client
 * that goes away (its connection reset or closed, or its h2c stream reset) makes {@link
 * #channelInactive} abandon the exchange, which closes the upstream request.
 *
 * <p>A FIN alone is ambiguous: a client that half-closes after its request still wants the answer
 * (RFC 9112 9.6: a half-close does not say the client has lost interest; busybox wget, {@code nc
 * -N}), while a client process that gave up or died while waiting also sends just a FIN when it had
 * nothing unread. Only a write tells them apart (the second answers it with an RST), and before its
 * response starts nothing is written to the client. Envoy's HTTP/1 codec takes the FIN as the end
 * of the connection (the response is lost; half-close is a TCP-proxy option only), as do nginx
 * (499) and Go's server (request context cancelled). Here the request waiting at the FIN is given
 * {@code --http-half-close-timeout} ({@link
 * dev.nodemesh.proxy.transport.ConnectionTimeouts#httpHalfClose}, 5 s) for its response to start:
 * answered in time, the half-closing client gets it (and, once the response is being written, a
 * vanished client shows up as a write error); not in time, the client is taken as gone, the
 * connection is closed and the upstream request cancelled (its connection or stream closed, never
 * pooled), counted as {@code nodemesh_connection_timeouts_total{reason="http_half_close"}}. So a
 * frozen or unreachable upstream is not held for a client that left, and 0 gives Envoy's and
 * nginx's behaviour for a request not yet answered.
 */
final class RequestHandler extends ChannelInboundHandlerAdapter implements Exchange.Downstream {
  private static final Logger log = LoggerFactory.getLogger(RequestHandler.class);

  /**
   * What every request of this connection shares.
   *
   * @param meters the labels and meters of its requests, kept between them (loop-confined)
   */
  record Context(
      DataPlane plane,
      EnrolledPod source,
      MeshService service,
      int servicePort,
      InetSocketAddress dialled,
      String clientIp,
      boolean h2Downstream,
      HttpLimits limits,
      RequestMeters meters) {}

  /**
   * How much of a locally answered request's remaining body is read and dropped to keep the
   * connection; past it the connection is closed once the answer has left (Tomcat's maxSwallowSize
   * is 2 MB).
   */
  static final long MAX_DISCARDED_BODY = 1 << 20;

  private final Context cx;
  private final ExchangeUpstreams upstreams;
  private @Nullable TrafficState traffic; // looked up on the first routed request
  private final ArrayDeque<HttpObject> queued = new ArrayDeque<>();
  private @Nullable ChannelHandlerContext ctx;
  private @Nullable Exchange current;
  private boolean discarding;
  private long discarded; // bytes of the current discarded body so far
  // Inside a downstream read: upstream flushes wait for channelReadComplete (one write per batch).
  private boolean reading;
  private @Nullable Channel upstreamFlushPending;
  // A response part was written downstream but not flushed (flushed at the upstream read's end).
  private boolean downstreamFlushPending;
  // The client sent its FIN: close once the requests read so far are answered.
  private boolean inputShutdown;
  // After the FIN: the current exchange's wait for the start of its response is bounded.
  private @Nullable ScheduledFuture<?> halfCloseTimer;

  RequestHandler(Context cx) {
    this(cx, ExchangeUpstreams.POOLED);
  }

  /** With {@code upstreams} as the way to upstream exchanges (tests plug in a fake). */
  RequestHandler(Context cx, ExchangeUpstreams upstreams) {
    this.cx = cx;
    this.upstreams = upstreams;
  }

  @Override
  public void handlerAdded(ChannelHandlerContext c) {
    this.ctx = c;
  }

  @Override
  public void channelRead(ChannelHandlerContext c, Object msg) {
    if (!(msg instanceof HttpObject o)) {
      ReferenceCountUtil.release(msg);
      return;
    }
    reading = true;
    Exchange e = current;
    if ((e != null && e.bodyComplete()) || !queued.isEmpty()) {
      queued.add(o);
      c.channel().config().setAutoRead(false);
      return;
    }
    handle(o);
  }

  @Override
  public void channelReadComplete(ChannelHandlerContext c) {
    reading = false;
    Channel ex = upstreamFlushPending;
    if (ex != null) {
      upstreamFlushPending = null;
      ex.flush();
    }
    c.fireChannelReadComplete();
  }

  private void handle(HttpObject msg) {
    if (msg instanceof HttpRequest head) {
      if (current != null) {
        // A new head before the last body part: only a broken decoder does that.
        ReferenceCountUtil.release(msg);
        close();
        return;
      }
      if (head.decoderResult().isSuccess()) {
        String over = cx.limits().exceeded(head.headers(), cx.h2Downstream());
        if (over != null) {
          // 431 on both protocols (a stream reset would make an HTTP/2 client retry the same).
          head.setDecoderResult(DecoderResult.failure(new TooLongHttpHeaderException(over)));
        }
      }
      Exchange e = new Exchange(this, cx, upstreams, head);
      current = e;
      e.begin(head);
      if (msg instanceof FullHttpMessage full) {
        content(new DefaultLastHttpContent(full.content().retain(), full.trailingHeaders()));
        full.release();
      }
      return;
    }
    if (msg instanceof HttpContent content) {
      content(content);
      return;
    }
    ReferenceCountUtil.release(msg);
  }

  private void content(HttpContent content) {
    Exchange e = current;
    if (e == null || discarding) {
      // The request was answered locally already: the rest of its body is read and dropped, up to
      // MAX_DISCARDED_BODY, so a small body does not cost the connection. A larger one ends it: a
      // client announcing a gigabyte would otherwise make the proxy (shared by every pod on the
      // node) read and throw away at line rate for as long as it likes.
      discarded += content.content().readableBytes();
      content.release();
      if (content instanceof LastHttpContent) {
        discarding = false;
      } else if (discarded > MAX_DISCARDED_BODY && ctx != null && ctx.channel().isActive()) {
        discarding = false;
        ctx.channel().config().setAutoRead(false);
        closeAfterWrites(ctx);
      }
      return;
    }
    e.content(content);
  }

  // ---- Exchange.Downstream ----

  @Override
  public ChannelHandlerContext ctx() {
    ChannelHandlerContext c = ctx;
    if (c == null) {
      throw new IllegalStateException("handler not added");
    }
    return c;
  }

  @Override
  public TrafficState traffic() {
    TrafficState ts = traffic;
    if (ts == null) {
      ts = TrafficState.of(cx.plane().metrics().registry());
      traffic = ts;
    }
    return ts;
  }

  @Override
  public void flushUpstream(Channel ex) {
    if (reading) {
      Channel pending = upstreamFlushPending;
      if (pending != null && pending != ex) {
        pending.flush();
      }
      upstreamFlushPending = ex;
    } else {
      ex.flush();
    }
  }

  /**
   * Writes a response part; the end of a response is flushed at once, anything before it when the
   * upstream read that produced it completes ({@link #upstreamReadComplete}).
   */
  @Override
  public void writeResponse(Object msg, @Nullable Channel upstream) {
    ChannelHandlerContext c = ctx();
    if (msg instanceof LastHttpContent || msg instanceof FullHttpResponse) {
      downstreamFlushPending = false;
      c.writeAndFlush(msg);
    } else {
      downstreamFlushPending = true;
      c.write(msg);
    }
    if (upstream != null && !c.channel().isWritable()) {
      upstream.config().setAutoRead(false);
    }
  }

  @Override
  public void upstreamReadComplete() {
    if (downstreamFlushPending) {
      downstreamFlushPending = false;
      ctx().flush();
    }
  }

  @Override
  public void close() {
    ChannelHandlerContext c = ctx();
    if (downstreamFlushPending) {
      downstreamFlushPending = false;
      c.flush(); // what the client was sent so far, then the close that breaks the response
    }
    c.close();
  }

  @Override
  public void exchangeDone(Exchange e, boolean continueReading, boolean discardRest) {
    if (current != e) {
      return;
    }
    current = null;
    cancelHalfCloseTimer();
    if (discardRest) {
      discarding = true; // the rest of the body is read and dropped
      discarded = 0;
    }
    if (!continueReading) {
      return;
    }
    if (cx.h2Downstream()) {
      return; // one request per stream; the codec ends the stream with the response
    }
    ChannelHandlerContext c = ctx();
    while (current == null || !current.bodyComplete()) {
      HttpObject next = queued.poll();
      if (next == null) {
        break;
      }
      handle(next);
    }
    Exchange waiting = current;
    if (inputShutdown && waiting != null) {
      halfClosed(waiting); // a request read before the FIN whose turn has come
      return;
    }
    if (inputShutdown && queued.isEmpty()) {
      closeAfterWrites(c);
      return;
    }
    if (queued.isEmpty() && c.channel().isActive()) {
      c.channel().config().setAutoRead(true);
    }
  }

  /** Closes after everything written so far has left (an empty write completes after them). */
  private static void closeAfterWrites(ChannelHandlerContext c) {
    c.channel().writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
  }

  // ---- the connection's own events ----

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext c) {
    Exchange e = current;
    if (e != null && c.channel().isWritable()) {
      e.downstreamWritable();
    }
    c.fireChannelWritabilityChanged();
  }

  @Override
  public void userEventTriggered(ChannelHandlerContext c, Object evt) {
    if (evt instanceof ChannelInputShutdownEvent && !cx.h2Downstream()) {
      inputShutdown = true;
      Exchange e = current;
      if (e == null && queued.isEmpty()) {
        closeAfterWrites(c);
      } else if (e != null) {
        halfClosed(e);
      }
      // Otherwise exchangeDone closes once the last request read is answered.
    }
    c.fireUserEventTriggered(evt);
  }

  /**
   * {@code e} is current and the client has sent its FIN: a body cut short can never complete; a
   * request still waiting for its response gets the half-close timeout (see the class comment).
   */
  private void halfClosed(Exchange e) {
    if (!e.bodyComplete()) {
      close(); // a request body cut short can never be completed
      return;
    }
    if (!e.awaitingResponse()) {
      return; // answered already, or its response is being written
    }
    long grace = cx.plane().timeouts().httpHalfClose().toNanos();
    if (grace == 0) {
      halfCloseTimedOut(e);
      return;
    }
    cancelHalfCloseTimer();
    halfCloseTimer =
        ctx().executor().schedule(() -> halfCloseTimedOut(e), grace, TimeUnit.NANOSECONDS);
  }

  private void halfCloseTimedOut(Exchange e) {
    halfCloseTimer = null;
    if (current != e || !e.awaitingResponse()) {
      return; // its response started in time: a client that left shows up when it is written
    }
    ConnectionTimeouts.counter(cx.plane().metrics().registry(), ConnectionTimeouts.HTTP_HALF_CLOSE)
        .increment();
    log.debug(
        "HTTP client of {} half-closed and got no response in time: taken as gone", cx.source());
    close(); // channelInactive abandons the exchange: the upstream request is cancelled
  }

  private void cancelHalfCloseTimer() {
    ScheduledFuture<?> t = halfCloseTimer;
    if (t != null) {
      halfCloseTimer = null;
      t.cancel(false);
    }
  }

  @Override
  public void channelInactive(ChannelHandlerContext c) {
    cancelHalfCloseTimer();
    Exchange e = current;
    if (e != null) {
      e.abandon();
    }
    HttpObject o;
    while ((o = queued.poll()) != null) {
      ReferenceCountUtil.release(o);
    }
    c.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext c, Throwable cause) {
    FatalErrors.check(cause);
    log.debug("HTTP connection from {} failed", cx.source(), cause);
    c.close();
  }
}
