package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.HttpRequestInfo;
import dev.nodemesh.proxy.l7.HttpLimits;
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
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.ReferenceCountUtil;
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
 * <p>Limits: HTTP/2 (the h2c preface) inside the stream is not parsed: it gets the connection-time
 * check with L7 conditions failing closed, and if that allows, the bytes are relayed as before. An
 * HTTP/1.1 Upgrade (101) is not followed: the stream stays HTTP/1.1.
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
  private boolean relayed; // handed to StreamRelay (h2c); nothing here is in charge any more
  private boolean ended;

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
    if (ended || relayed) {
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
    if (ended || relayed) {
      return;
    }
    ended = true;
    app.close();
    stream.close(); // an open stream closed from here is reset
    finish(error);
  }

  private void finish(@Nullable Throwable error) {
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
      ctx.write(msg instanceof ByteBuf buf ? new DefaultHttp2DataFrame(buf) : msg, promise);
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
      h2c(ctx, in.readRetainedSlice(in.readableBytes()));
    }

    /**
     * HTTP/2 inside the stream: the requests are not parsed here, so the connection-time check
     * decides with L7 conditions failing closed (an ALLOW rule with them cannot match, a DENY rule
     * with them matches); allowed, the stream is relayed as bytes from here.
     */
    private void h2c(ChannelHandlerContext ctx, ByteBuf early) {
      ConfigSnapshot snapshot = context.snapshots().current();
      Workload found = snapshot.workloadByIp(target.getAddress());
      Workload destination = found == null ? connected : found;
      Decision d = tunnel.authorizer().check(snapshot, destination, target.getPort(), caller);
      if (!d.allowed()) {
        early.release();
        context
            .metrics()
            .policyDenials(
                "destination",
                TrafficLabels.principal(caller.principal()),
                destination.name(),
                destination.namespace(),
                d.reason())
            .increment();
        log.debug("HBONE h2c {} from {} denied by {}", target, caller.principal(), d.policy());
        fail(null);
        return;
      }
      relayed = true;
      ChannelPipeline sp = stream.pipeline();
      for (String name : List.of("http-policy", "http-keepalive", "http-paths", "http")) {
        sp.remove(name);
      }
      ChannelPipeline ap = app.pipeline();
      for (String name : List.of("app", "http", "app-bytes")) {
        ap.remove(name);
      }
      sp.remove("hbone-frames");
      ctx.pipeline().remove(this);
      app.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
      listener.bytes(false, early.readableBytes());
      app.writeAndFlush(early);
      StreamRelay.start(app, stream, new ArrayDeque<>(), false, listener);
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
}
