package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.HttpRequestInfo;
import dev.nodemesh.proxy.l4.StreamRelay;
import dev.nodemesh.proxy.l7.HttpLimits;
import dev.nodemesh.proxy.l7.HttpProxy;
import dev.nodemesh.proxy.l7.LocalReplies;
import dev.nodemesh.proxy.l7.path.RequestTargetFilter;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelDuplexHandler;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.ChannelPromise;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.HttpResponse;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpStatusClass;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayDeque;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The receiving side's L7 authorization inside one HBONE stream, for a destination workload whose
 * policies have L7 rules (methods, paths, headers), which a per-connection check cannot prove: the
 * stream's bytes are parsed as HTTP/1.1 (what the sending node's L7 path, or an HTTP client over
 * its L4 path, puts in the tunnel), each request-target is normalised once ({@link
 * RequestTargetFilter}, the L7 path's settings), and each request is checked against the current
 * snapshot with the caller's identity proved by mTLS: a denied one is answered 403 here and its
 * body dropped, an allowed one goes to the app over a connection from inside the pod. Policy is
 * read per request, so a change applies to the next request on an open stream.
 *
 * <p>One request at a time reaches the app: a pipelined request waits (and the stream is not read)
 * until the previous response has ended, so a local 403 can never overtake an app's response. Both
 * channels run on one event loop with AUTO_READ off; the stream is read only while the app socket
 * is writable and the app only while the stream is, so back-pressure is HTTP/2 flow control end to
 * end as in {@link StreamRelay}. The caller's END_STREAM is a half-close: the response in progress
 * still comes back, then the stream ends.
 *
 * <p>HTTP/2 (the h2c preface, what an h2c or gRPC client, or the sending node's L7 path for an
 * http2/grpc port, puts in the tunnel) gets the L7 path's own h2c server inside the stream ({@link
 * HttpProxy#installNestedH2Server}: frame codec and its limits, one child channel per request, the
 * same normalisation), and each request is checked as above: a denied one is answered on its own
 * HTTP/2 stream (403, or a trailers-only PERMISSION_DENIED for a gRPC client) while the other
 * streams of the connection go on; an allowed one goes to the app on a stream of its own over one
 * h2c connection on the app socket. Back-pressure is per request: a request's stream is read only
 * while its app stream is writable and the other way round, so each direction is held by HTTP/2
 * flow control on that request's streams, and the tunnel stream itself is always read. The caller's
 * END_STREAM ends the inner connection (HTTP/2 has no half-close of a connection: GOAWAY, then the
 * streams in flight finish); the app closing its connection does the same.
 *
 * <p>Limits: an HTTP/1.1 Upgrade (101, h2c by upgrade included) is not followed: the stream stays
 * HTTP/1.1. Server push from the app is refused. The inner HTTP/2 connection has no idle timeout of
 * its own (the tunnel connection's apply).
 */
final class HttpPolicyStream {
  private static final Logger log = LoggerFactory.getLogger(HttpPolicyStream.class);
  private static final byte[] PREFACE = ByteBufUtil.getBytes(Http2CodecUtil.connectionPrefaceBuf());
  private static final byte[] DENIED_BODY =
      "RBAC: access denied\n".getBytes(StandardCharsets.US_ASCII);

  /** What happens to the body of the request being read. */
  private enum Body {
    /** between requests */
    NONE,
    /** an allowed request's body, on to the app */
    FORWARD,
    /** a denied (or malformed) request's body, dropped */
    DROP
  }

  private final Tunnel tunnel;
  private final HboneServer.Context context;
  private final Http2StreamChannel stream;
  private final Channel app;
  private final InetSocketAddress target;
  private final ConnectionSource caller;
  private final Workload connected;
  private final StreamRelay.Listener listener;
  private final ArrayDeque<HttpObject> waiting = new ArrayDeque<>();
  private Body body = Body.NONE;
  private boolean responding; // an allowed request's response has not ended yet
  private boolean informational; // the app's last head was 1xx: the real response follows
  private boolean callerDone; // END_STREAM from the caller: end once nothing is outstanding
  private boolean closeAfterResponse; // the request in progress was not keep-alive
  private boolean h2; // the caller spoke h2c: the inner HTTP/2 connection's handlers are in charge
  private boolean ended;
  private boolean finished; // the listener has been told
  private @Nullable ChannelHandlerContext frames; // the stream's first handler, below any codec

  private HttpPolicyStream(
      Tunnel tunnel,
      HboneServer.Context context,
      Http2StreamChannel stream,
      Channel app,
      InetSocketAddress target,
      ConnectionSource caller,
      Workload connected,
      StreamRelay.Listener listener) {
    this.tunnel = tunnel;
    this.context = context;
    this.stream = stream;
    this.app = app;
    this.target = target;
    this.caller = caller;
    this.connected = connected;
    this.listener = listener;
  }

  /**
   * Takes over {@code stream} (answered 200, no handler of its own left, AUTO_READ off) and the
   * connected {@code app} socket (AUTO_READ off, same event loop). Call on the event loop.
   *
   * @param connected the destination workload as the CONNECT found it; each request re-reads it
   */
  static void start(
      Tunnel tunnel,
      HboneServer.Context context,
      Http2StreamChannel stream,
      Channel app,
      InetSocketAddress target,
      ConnectionSource caller,
      Workload connected,
      StreamRelay.Listener listener) {
    HttpPolicyStream s =
        new HttpPolicyStream(tunnel, context, stream, app, target, caller, connected, listener);
    HttpLimits limits = HttpLimits.DEFAULT;
    // HTTP/1.1 ends a connection with a close; the caller's half-close is handled above the codec.
    app.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
    stream
        .pipeline()
        .addLast("hbone-frames", s.new Frames())
        .addLast("hbone-sniff", s.new Sniffer())
        .addLast(
            "http",
            new HttpServerCodec(limits.maxInitialLineBytes(), limits.maxHeaderBytes(), 64 * 1024))
        .addLast("http-paths", new RequestTargetFilter(context.paths()))
        .addLast("http-policy", s.new StreamSide());
    app.pipeline()
        .addLast("app-bytes", s.new AppBytes())
        .addLast("http", new HttpClientCodec())
        .addLast("app", s.new AppSide());
    stream.read();
  }

  /** Re-reads the destination and checks one request; counts and logs a denial. */
  private Decision authorize(HttpRequest head) {
    ConfigSnapshot snapshot = context.snapshots().current();
    Workload found = snapshot.workloadByIp(target.getAddress());
    Workload destination = found == null ? connected : found;
    String uri = head.uri();
    int query = uri.indexOf('?');
    String path = query < 0 ? uri : uri.substring(0, query);
    Decision d =
        tunnel
            .authorizer()
            .check(
                snapshot,
                destination,
                target.getPort(),
                caller,
                new HttpRequestInfo(head.method().name(), path, head.headers()::get));
    if (!d.allowed()) {
      context
          .metrics()
          .policyDenials(
              "destination",
              TrafficLabels.principal(caller.principal()),
              destination.name(),
              destination.namespace(),
              d.reason())
          .increment();
      log.debug(
          "HBONE {} {} {} from {} denied by {} ({})",
          head.method(),
          path,
          target,
          caller.principal(),
          d.policy(),
          d.reason());
    }
    return d;
  }

  /** Handles the waiting messages in order, up to a request that must wait for a response. */
  private void drain() {
    HttpObject o;
    while ((o = waiting.peek()) != null) {
      if (o instanceof HttpRequest && responding) {
        return;
      }
      waiting.poll();
      handle(o);
    }
    if (callerDone && !responding && body == Body.NONE) {
      end();
    }
  }

  private void handle(HttpObject o) {
    if (o instanceof HttpRequest head) {
      if (!head.decoderResult().isSuccess()) {
        // Not HTTP/1.1, or a target the normalisation refuses: nothing can be checked.
        ReferenceCountUtil.release(o);
        body = Body.DROP;
        answer(HttpResponseStatus.BAD_REQUEST, true);
        return;
      }
      boolean last = o instanceof LastHttpContent;
      boolean keepAlive = HttpUtil.isKeepAlive(head);
      if (authorize(head).allowed()) {
        responding = true;
        closeAfterResponse = !keepAlive;
        app.write(o, app.voidPromise());
        app.read(); // the response
        body = last ? Body.NONE : Body.FORWARD;
      } else {
        ReferenceCountUtil.release(o);
        body = last ? Body.NONE : Body.DROP;
        answer(HttpResponseStatus.FORBIDDEN, !keepAlive);
      }
      return;
    }
    if (o instanceof HttpContent c) {
      if (body == Body.FORWARD) {
        app.write(c, app.voidPromise());
      } else {
        c.release();
      }
      if (c instanceof LastHttpContent) {
        body = Body.NONE;
      }
      return;
    }
    ReferenceCountUtil.release(o);
  }

  /**
   * The proxy's own answer on the stream, in order (no response is outstanding when it is made);
   * {@code close} ends the stream after it (the request was not keep-alive, or was malformed).
   */
  private void answer(HttpResponseStatus status, boolean close) {
    DefaultFullHttpResponse r =
        new DefaultFullHttpResponse(
            HttpVersion.HTTP_1_1,
            status,
            status == HttpResponseStatus.FORBIDDEN
                ? Unpooled.wrappedBuffer(DENIED_BODY)
                : Unpooled.EMPTY_BUFFER);
    r.headers()
        .set(HttpHeaderNames.CONTENT_TYPE, HttpHeaderValues.TEXT_PLAIN)
        .setInt(HttpHeaderNames.CONTENT_LENGTH, r.content().readableBytes());
    if (close) {
      r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
      stream.writeAndFlush(r).addListener((ChannelFutureListener) f -> end());
      return;
    }
    stream.write(r, stream.voidPromise());
  }

  /** Reads the caller's next bytes when nothing holds them back. */
  private void readStream() {
    if (!ended && !callerDone && waiting.isEmpty() && (body != Body.FORWARD || app.isWritable())) {
      stream.read();
    }
  }

  /** Ends the stream (END_STREAM after what was written) and closes the app socket. */
  private void end() {
    if (h2) {
      endH2();
      return;
    }
    if (ended) {
      return;
    }
    ended = true;
    app.close();
    if (stream.isActive()) {
      stream
          .writeAndFlush(new DefaultHttp2DataFrame(true))
          .addListener((ChannelFutureListener) f -> stream.close());
    }
    finish(null);
  }

  /** Tears both down after an error or a reset: RST_STREAM, and the app socket closed. */
  private void fail(@Nullable Throwable error) {
    if (ended) {
      return;
    }
    ended = true;
    app.close();
    ChannelHandlerContext f = frames;
    if (h2 && f != null) {
      // Below the inner codec, whose own close would wait for its streams (graceful shutdown):
      // the stream is reset and the codec's streams end with it.
      f.close();
      return; // finished when the stream is inactive (H2Connection)
    }
    stream.close(); // an open stream closed from here is reset
    finish(error);
  }

  /**
   * Ends the inner HTTP/2 connection: GOAWAY through its codec, which closes the stream once the
   * streams in flight have ended ({@link Frames#close} then sends END_STREAM); the app connection
   * likewise. Finished when the stream is inactive.
   */
  private void endH2() {
    if (ended) {
      return;
    }
    ended = true;
    app.close();
    stream.close();
  }

  private void finish(@Nullable Throwable error) {
    if (finished) {
      return;
    }
    finished = true;
    HttpObject o;
    while ((o = waiting.poll()) != null) {
      ReferenceCountUtil.release(o);
    }
    listener.closed(error);
  }

  /**
   * DATA frames in become buffers for the codec, buffers out become DATA frames; END_STREAM becomes
   * a half-close ({@link ChannelInputShutdownEvent}, which also makes the codec finish), a reset
   * ends everything.
   */
  private final class Frames extends ChannelDuplexHandler {
    private boolean endSent;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      frames = ctx;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      boolean endStream;
      if (msg instanceof Http2DataFrame data) {
        endStream = data.isEndStream();
        ByteBuf content = data.content();
        if (content.isReadable()) {
          ctx.fireChannelRead(content);
        } else {
          data.release();
        }
      } else {
        endStream = msg instanceof Http2HeadersFrame h && h.isEndStream();
        ReferenceCountUtil.release(msg);
      }
      if (endStream) {
        ctx.fireUserEventTriggered(ChannelInputShutdownEvent.INSTANCE);
      }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof Http2ResetFrame) {
        fail(null);
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (msg instanceof Http2DataFrame d && d.isEndStream()) {
        endSent = true;
      }
      ctx.write(msg instanceof ByteBuf buf ? new DefaultHttp2DataFrame(buf) : msg, promise);
    }

    /**
     * The inner h2c codec closes the stream when its connection has ended: END_STREAM first, so a
     * caller that has ended its side sees a clean end, not a reset.
     */
    @Override
    public void close(ChannelHandlerContext ctx, ChannelPromise promise) {
      if (h2 && !endSent && ctx.channel().isActive()) {
        endSent = true;
        ctx.writeAndFlush(new DefaultHttp2DataFrame(true))
            .addListener((ChannelFutureListener) f -> ctx.close(promise));
        return;
      }
      ctx.close(promise);
    }
  }

  /**
   * HTTP/1.1 unless the first bytes are the HTTP/2 preface; removes itself once it has decided
   * (handing the bytes on).
   */
  private final class Sniffer extends ByteToMessageDecoder {
    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      int n = Math.min(in.readableBytes(), PREFACE.length);
      for (int i = 0; i < n; i++) {
        if (in.getByte(in.readerIndex() + i) != PREFACE[i]) {
          ctx.pipeline().remove(this);
          return;
        }
      }
      if (n < PREFACE.length) {
        ctx.read();
        return;
      }
      h2c(ctx);
    }

    /**
     * HTTP/2 inside the stream: the HTTP/1.1 handlers make way for the L7 path's h2c server (its
     * codec gets the bytes read so far when this sniffer leaves) and an h2c client on the app
     * socket; from here the stream and the app socket are read all the time, each request's streams
     * holding back their own flow.
     */
    private void h2c(ChannelHandlerContext ctx) {
      h2 = true;
      ChannelPipeline ap = app.pipeline();
      ap.remove("app");
      ap.remove("http");
      ap.addLast("h2", Http2FrameCodecBuilder.forClient().build())
          // Streams the app would push are not accepted: nothing here asked for them.
          .addLast("h2-streams", new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()))
          .addLast("app-h2", new AppConnection());
      ChannelPipeline sp = stream.pipeline();
      sp.remove("http-policy");
      sp.remove("http-paths");
      sp.remove("http");
      HttpProxy.installNestedH2Server(
          sp, HttpLimits.DEFAULT, new RequestTargetFilter(context.paths()), () -> new H2Request());
      sp.addLast("h2-connection", new H2Connection());
      app.flush(); // the client preface and SETTINGS
      app.config().setAutoRead(true);
      stream.config().setAutoRead(true);
      ctx.pipeline().remove(this); // hands the preface and what followed to the codec
    }
  }

  /** The caller's requests, as the server codec decodes them. */
  private final class StreamSide extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (ended) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof HttpObject o) {
        waiting.add(o);
        drain();
      } else {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      app.flush();
      stream.flush();
      readStream();
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        callerDone = true;
        app.flush();
        drain();
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (stream.isWritable() && responding) {
        app.read();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      fail(null);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE L7 stream to {} failed", target, cause);
      fail(cause);
    }
  }

  /** Counts the bytes each way on the app socket (for the connection's meters and log line). */
  private final class AppBytes extends ChannelDuplexHandler {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof ByteBuf b) {
        listener.bytes(true, b.readableBytes());
      }
      ctx.fireChannelRead(msg);
    }

    @Override
    public void write(ChannelHandlerContext ctx, Object msg, ChannelPromise promise) {
      if (msg instanceof ByteBuf b) {
        listener.bytes(false, b.readableBytes());
      }
      ctx.write(msg, promise);
    }
  }

  /** The app's responses, as the client codec decodes them, back to the caller. */
  private final class AppSide extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (ended || !(msg instanceof HttpObject) || !responding) {
        // Nothing asked for it (bytes from the app before or between requests): dropped.
        ReferenceCountUtil.release(msg);
        return;
      }
      if (msg instanceof HttpResponse head) {
        informational = head.status().codeClass() == HttpStatusClass.INFORMATIONAL;
      }
      stream.write(msg, stream.voidPromise());
      if (msg instanceof LastHttpContent && !informational) {
        responding = false;
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      stream.flush();
      if (ended) {
        return;
      }
      if (responding) {
        if (stream.isWritable()) {
          app.read();
        }
        return;
      }
      if (closeAfterResponse) {
        end();
        return;
      }
      drain();
      stream.flush();
      app.flush();
      readStream();
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      if (app.isWritable()) {
        readStream();
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      // After the codec's last decode: a close-delimited body has been written by now; a response
      // cut short is a failure the caller must see (a reset), not an end.
      if (responding) {
        fail(null);
      } else {
        end();
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE L7 stream to {}: app connection failed", target, cause);
      fail(cause);
    }
  }

  /** Last on the stream in h2c mode: the caller's end, the stream's end, errors. */
  private final class H2Connection extends ChannelInboundHandlerAdapter {
    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        endH2(); // the caller will send nothing more: no new request can come
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      ended = true;
      app.close();
      finish(null);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE h2c stream to {} failed", target, cause);
      fail(cause);
    }
  }

  /** Last on the app socket in h2c mode: the app's connection ending ends the inner one. */
  private final class AppConnection extends ChannelInboundHandlerAdapter {
    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      endH2();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE h2c stream to {}: app connection failed", target, cause);
      ctx.close();
    }
  }

  /**
   * One HTTP/2 request inside the stream, on its own child channel behind the L7 path's
   * frame-to-object codec and normalisation: checked once its head is read; refused, it is answered
   * on this stream and its body dropped; allowed, it goes to the app on a new stream of the app
   * connection and the response comes back, each direction read only while the other side takes it.
   */
  private final class H2Request extends ChannelInboundHandlerAdapter {
    private final ArrayDeque<HttpObject> early = new ArrayDeque<>(); // before the app stream opens
    private @Nullable Channel down;
    private @Nullable Channel up;
    private @Nullable HttpRequest head;
    private boolean refused; // answered here; the rest of the body is dropped
    private boolean responseStarted; // a final response head went back
    private boolean responseEnded;

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
      down = ctx.channel();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (refused || !(msg instanceof HttpObject o)) {
        ReferenceCountUtil.release(msg);
        return;
      }
      if (head == null) {
        if (!(o instanceof HttpRequest h)) {
          ReferenceCountUtil.release(o);
          return;
        }
        head = h;
        begin(ctx, h);
        return;
      }
      Channel u = up;
      if (u == null) {
        early.add(o);
        return;
      }
      u.write(o, u.voidPromise());
      if (!u.isWritable()) {
        ctx.channel().config().setAutoRead(false);
      }
    }

    private void begin(ChannelHandlerContext ctx, HttpRequest h) {
      HttpResponseStatus refuse = null;
      String why = "";
      String over =
          h.decoderResult().isSuccess() ? HttpLimits.DEFAULT.exceeded(h.headers(), true) : null;
      if (!h.decoderResult().isSuccess()) {
        refuse = HttpResponseStatus.BAD_REQUEST; // a target the normalisation refuses
        why = "malformed request";
      } else if (over != null) {
        refuse = HttpResponseStatus.REQUEST_HEADER_FIELDS_TOO_LARGE;
        why = over;
      } else if (!authorize(h).allowed()) {
        refuse = HttpResponseStatus.FORBIDDEN;
        why = "RBAC: access denied";
      }
      if (refuse != null) {
        refused = true;
        ctx.writeAndFlush(LocalReplies.forRequest(h, refuse, why, true));
        ReferenceCountUtil.release(h);
        return;
      }
      early.add(h);
      ctx.channel().config().setAutoRead(false); // until the app's stream is open
      new Http2StreamChannelBootstrap(app)
          .handler(
              new ChannelInitializer<Http2StreamChannel>() {
                @Override
                protected void initChannel(Http2StreamChannel ch) {
                  ch.pipeline()
                      .addLast(
                          new Http2StreamFrameToHttpObjectCodec(false),
                          new AppStream(H2Request.this));
                }
              })
          .open()
          .addListener(
              (Future<Http2StreamChannel> f) -> {
                Channel d = ctx.channel();
                if (!f.isSuccess()) {
                  log.debug("HBONE h2c {}: no app stream: {}", target, f.cause().toString());
                  releaseEarly();
                  if (d.isActive()) {
                    refused = true;
                    ctx.writeAndFlush(
                        LocalReplies.forRequest(
                            h,
                            HttpResponseStatus.SERVICE_UNAVAILABLE,
                            "upstream connect failed",
                            true));
                    d.config().setAutoRead(true);
                  }
                  return;
                }
                Channel u = f.getNow();
                if (!d.isActive()) {
                  releaseEarly();
                  u.close();
                  return;
                }
                up = u;
                HttpObject o;
                while ((o = early.poll()) != null) {
                  u.write(o, u.voidPromise());
                }
                u.flush();
                d.config().setAutoRead(u.isWritable());
              });
    }

    private void releaseEarly() {
      HttpObject o;
      while ((o = early.poll()) != null) {
        ReferenceCountUtil.release(o);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      Channel u = up;
      if (u != null) {
        u.flush();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      Channel u = up;
      if (u != null && ctx.channel().isWritable()) {
        u.config().setAutoRead(true);
      }
    }

    /** The request's stream is gone (ended both ways, or reset by the caller): so is the app's. */
    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      releaseEarly();
      Channel u = up;
      if (u != null) {
        u.close(); // a reset when the app's stream has not ended
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE h2c request to {} failed", target, cause);
      ctx.close();
    }
  }

  /** The app's side of one allowed HTTP/2 request: its response back on the request's stream. */
  private final class AppStream extends ChannelInboundHandlerAdapter {
    private final H2Request request;

    AppStream(H2Request request) {
      this.request = request;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      Channel d = request.down;
      if (d == null || !d.isActive() || request.responseEnded || !(msg instanceof HttpObject)) {
        ReferenceCountUtil.release(msg);
        return;
      }
      boolean informational =
          msg instanceof HttpResponse r && r.status().codeClass() == HttpStatusClass.INFORMATIONAL;
      if (msg instanceof HttpResponse && !informational) {
        request.responseStarted = true;
      }
      if (msg instanceof LastHttpContent && !informational) {
        request.responseEnded = true;
        d.writeAndFlush(msg, d.voidPromise());
        return;
      }
      d.write(msg, d.voidPromise());
      if (!d.isWritable()) {
        ctx.channel().config().setAutoRead(false);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      Channel d = request.down;
      if (d != null) {
        d.flush();
      }
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      Channel d = request.down;
      if (d != null && ctx.channel().isWritable()) {
        d.config().setAutoRead(true);
      }
    }

    /**
     * The app's stream is gone: after a whole response that is the end; before one, the app reset
     * it or its connection went: 502 when nothing was answered yet, else a reset of the request.
     */
    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      Channel d = request.down;
      HttpRequest h = request.head;
      if (d == null || !d.isActive() || request.responseEnded) {
        return;
      }
      if (!request.responseStarted && h != null) {
        request.responseEnded = true;
        d.writeAndFlush(
            LocalReplies.forRequest(h, HttpResponseStatus.BAD_GATEWAY, "upstream reset", true));
        return;
      }
      d.close();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("HBONE h2c app stream to {} failed", target, cause);
      ctx.close();
    }
  }
}
