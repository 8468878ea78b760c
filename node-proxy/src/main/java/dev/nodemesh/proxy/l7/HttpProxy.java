package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.drain.HttpDrain;
import dev.nodemesh.proxy.l7.path.RequestTargetFilter;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.H2ConnectionErrors;
import dev.nodemesh.proxy.transport.StreamlessTimeout;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.handler.codec.ByteToMessageDecoder;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpServerExpectContinueHandler;
import io.netty.handler.codec.http.HttpServerKeepAliveHandler;
import io.netty.handler.codec.http2.Http2CodecUtil;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.handler.flush.FlushConsolidationHandler;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Set;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The L7 path's entry from the outbound listener. {@link #wants} says whether a connection routed
 * to a Service should take it (an HTTPRoute is attached to that Service port); {@link #start} then
 * installs a sniffer that reads the first bytes and picks HTTP/2 (the h2c prior-knowledge preface),
 * HTTP/1.1 (a request line), or, on a port whose appProtocol does not promise HTTP, plain L4 for
 * anything else. The sniffer removes itself once it has decided, handing the bytes it read on.
 */
public final class HttpProxy {
  private static final Logger log = LoggerFactory.getLogger(HttpProxy.class);

  private static final Set<String> HTTP_PROTOCOLS =
      Set.of("http", "http2", "grpc", "h2c", "kubernetes.io/h2c", "kubernetes.io/http2");
  private static final byte[] PREFACE = ByteBufUtil.getBytes(Http2CodecUtil.connectionPrefaceBuf());
  private static final List<String> METHODS =
      List.of(
          "GET ", "HEAD ", "POST ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "TRACE ", "CONNECT ");

  private HttpProxy() {}

  /** True when the port's appProtocol (Service spec) is HTTP/2 cleartext or gRPC. */
  public static boolean isH2(String appProtocol) {
    return switch (appProtocol.toLowerCase(java.util.Locale.ROOT)) {
      case "http2", "grpc", "h2c", "kubernetes.io/h2c", "kubernetes.io/http2" -> true;
      default -> false;
    };
  }

  /**
   * True when the connection should be sniffed for HTTP: an HTTPRoute or GRPCRoute covers the port
   * for this caller (a producer route, or a consumer route of the caller's own namespace), or an
   * endpoint of the Service has an AuthorizationPolicy with L7 rules (which only the L7 path can
   * check; a connection there that is not HTTP falls back to L4, where such rules fail closed).
   */
  public static boolean wants(ConfigSnapshot snapshot, EnrolledPod source, Route.ToService route) {
    return snapshot.hasHttpRoute(route.service().id(), route.port().port(), source.namespace())
        || snapshot.needsL7Authorization(route.service().id());
  }

  /**
   * Takes over {@code downstream} (its first handler has removed itself; AUTO_READ is off).
   *
   * @param original the VIP:port the client dialled
   */
  public static void start(
      DataPlane plane,
      Channel downstream,
      EnrolledPod source,
      Route.ToService route,
      InetSocketAddress original,
      Runnable l4Fallback) {
    boolean declared =
        HTTP_PROTOCOLS.contains(route.port().appProtocol().toLowerCase(java.util.Locale.ROOT));
    String client = clientIp(source, (InetSocketAddress) downstream.remoteAddress());
    RequestHandler.Context h1 = context(plane, source, route, original, client, false);
    Sniffer sniffer = new Sniffer(h1, declared, l4Fallback);
    downstream.pipeline().addLast(sniffer);
    downstream.read();
    if (!declared) {
      // A server-first protocol (SMTP, MySQL...) on a routed port would wait for the client
      // forever.
      downstream
          .eventLoop()
          .schedule(
              sniffer::timedOut, SNIFF_TIMEOUT_MILLIS, java.util.concurrent.TimeUnit.MILLISECONDS);
    } else {
      // On an HTTP port, a client that sends too little to tell the protocol (nothing, or a
      // prefix of the h2c preface) is a request head that never completes.
      downstream
          .eventLoop()
          .schedule(
              sniffer::headerTimedOut,
              plane.timeouts().requestHeader().toNanos(),
              java.util.concurrent.TimeUnit.NANOSECONDS);
    }
  }

  /**
   * How long a port whose appProtocol does not promise HTTP waits for the client's first bytes
   * before relaying at L4 ({@code nodemesh.http.sniffTimeoutMillis}).
   */
  static final long SNIFF_TIMEOUT_MILLIS = Long.getLong("nodemesh.http.sniffTimeoutMillis", 1000);

  private static RequestHandler.Context context(
      DataPlane plane,
      EnrolledPod source,
      Route.ToService route,
      InetSocketAddress original,
      String client,
      boolean h2) {
    return new RequestHandler.Context(
        plane,
        source,
        route.service(),
        route.port().port(),
        original,
        client,
        h2,
        HttpLimits.DEFAULT,
        new RequestMeters());
  }

  /**
   * The caller's address for {@code x-forwarded-for}, ring hash by source IP and the access log:
   * the peer's, unless it is a loopback address. In eBPF mode {@code cgroup/connect4} rewrites the
   * app's connect to {@code 127.0.0.1:15001}, so the kernel picks 127.0.0.1 as the source and the
   * original source address exists nowhere (the eBPF maps key the original destination by the
   * rewritten source, 127.0.0.1 and its port); the pod the listener belongs to is the caller, so
   * its own address of the peer's family (else its first) is the real one. Loopback traffic inside
   * a pod is never captured, so a loopback peer always means this rewrite.
   */
  static String clientIp(EnrolledPod source, @Nullable InetSocketAddress peer) {
    if (peer == null) {
      return source.ips().isEmpty() ? "unknown" : source.ips().get(0).getHostAddress();
    }
    java.net.InetAddress a = peer.getAddress();
    if (!a.isLoopbackAddress()) {
      return a.getHostAddress();
    }
    for (java.net.InetAddress ip : source.ips()) {
      if ((ip instanceof java.net.Inet4Address) == (a instanceof java.net.Inet4Address)) {
        return ip.getHostAddress();
      }
    }
    return source.ips().isEmpty() ? a.getHostAddress() : source.ips().get(0).getHostAddress();
  }

  /** Decides the protocol from the first bytes; see the class comment. */
  static final class Sniffer extends ByteToMessageDecoder {
    private final RequestHandler.Context cx;
    private final boolean declared;
    private final Runnable l4Fallback;

    private @Nullable ChannelHandlerContext ctx;

    Sniffer(RequestHandler.Context cx, boolean declared, Runnable l4Fallback) {
      this.cx = cx;
      this.declared = declared;
      this.l4Fallback = l4Fallback;
    }

    @Override
    public void handlerAdded(ChannelHandlerContext c) {
      this.ctx = c;
    }

    /** No decision in time: relay whatever arrives at L4. */
    void timedOut() {
      ChannelHandlerContext c = ctx;
      if (c != null && !c.isRemoved() && c.channel().isActive()) {
        l4Fallback.run();
        c.pipeline().remove(this);
      }
    }

    /** Still undecided on an HTTP port after the request-header timeout: closed, counted. */
    void headerTimedOut() {
      ChannelHandlerContext c = ctx;
      if (c != null && !c.isRemoved() && c.channel().isActive()) {
        ConnectionTimeouts.counter(
                cx.plane().metrics().registry(), ConnectionTimeouts.REQUEST_HEADER)
            .increment();
        c.close();
      }
    }

    @Override
    protected void decode(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      Protocol p = sniff(in, declared);
      if (p == null) {
        ctx.read(); // not enough bytes yet
        return;
      }
      ChannelPipeline pipeline = ctx.pipeline();
      if (log.isDebugEnabled()) {
        log.debug("{}: {} from its first {} bytes", ctx.channel(), p, in.readableBytes());
      }
      switch (p) {
        case H2 -> installH2(pipeline, cx);
        case HTTP1 -> installHttp1(pipeline, cx);
        case OTHER -> l4Fallback.run();
      }
      if (p != Protocol.OTHER) {
        ctx.channel().config().setAutoRead(true);
      }
      pipeline.remove(this); // hands the bytes read so far to the next handler
    }

    @Override
    protected void decodeLast(ChannelHandlerContext ctx, ByteBuf in, List<Object> out) {
      if (in.isReadable()) {
        decode(ctx, in, out);
      }
      if (ctx.pipeline().get(Sniffer.class) == this) {
        ctx.close(); // closed before it said anything we could decide on
      }
    }
  }

  enum Protocol {
    H2,
    HTTP1,
    OTHER
  }

  /**
   * The protocol the first bytes announce, or null when more bytes are needed. Pure, for tests.
   *
   * @param declared the port's appProtocol promises HTTP: anything that is not the HTTP/2 preface
   *     is treated as HTTP/1.1 (and gets 400 if it is not)
   */
  static @Nullable Protocol sniff(ByteBuf in, boolean declared) {
    int n = in.readableBytes();
    int start = in.readerIndex();
    boolean prefaceSoFar = true;
    for (int i = 0; i < Math.min(n, PREFACE.length); i++) {
      if (in.getByte(start + i) != PREFACE[i]) {
        prefaceSoFar = false;
        break;
      }
    }
    if (prefaceSoFar) {
      return n >= PREFACE.length ? Protocol.H2 : null;
    }
    if (declared) {
      return Protocol.HTTP1;
    }
    String head = in.toString(start, Math.min(n, 8), StandardCharsets.US_ASCII);
    boolean undecided = false;
    for (String m : METHODS) {
      if (head.startsWith(m)) {
        return Protocol.HTTP1;
      }
      if (m.startsWith(head)) {
        undecided = true;
      }
    }
    return undecided ? null : Protocol.OTHER;
  }

  static void installHttp1(ChannelPipeline p, RequestHandler.Context cx) {
    HttpLimits l = cx.limits();
    Http1Timeouts timeouts =
        new Http1Timeouts(cx.plane().timeouts(), cx.plane().metrics().registry());
    p.addLast(
        timeouts.bytes,
        new HttpServerCodec(l.maxInitialLineBytes(), l.maxHeaderBytes(), 64 * 1024),
        timeouts.heads,
        new RequestTargetFilter(cx.plane().paths()), // before anything reads the path
        new HttpServerKeepAliveHandler(),
        HttpDrain.http1(),
        new HttpServerExpectContinueHandler(),
        new RequestHandler(cx));
  }

  /**
   * Streams one downstream h2c connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
   * Envoy's default is 2^31-1; Istio, nginx (128) and most proxies cap it, since every stream here
   * holds an exchange, a replay buffer and possibly an upstream stream: 100, the value RFC 9113
   * recommends as the minimum a peer should allow, so no conforming client is starved.
   */
  static final int MAX_CONCURRENT_STREAMS = 100;

  static final int MAX_RST_FRAMES_PER_WINDOW = 200;
  static final int RST_WINDOW_SECONDS = 30;
  static final int MAX_SMALL_CONTINUATION_FRAMES = 16;

  static void installH2(ChannelPipeline p, RequestHandler.Context h1) {
    RequestHandler.Context cx =
        new RequestHandler.Context(
            h1.plane(),
            h1.source(),
            h1.service(),
            h1.servicePort(),
            h1.dialled(),
            h1.clientIp(),
            true,
            h1.limits(),
            h1.meters());
    // HTTP/2 has no half-close of a connection (streams end, connections GOAWAY): a client's FIN
    // ends it, as it would without the in-pod listener's half-closure, never left in CLOSE-WAIT.
    p.channel().config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
    ConnectionTimeouts timeouts = cx.plane().timeouts();
    MeterRegistry registry = cx.plane().metrics().registry();
    p.addLast(HttpDrain.http2());
    installH2Server(
        p,
        cx.limits(),
        new RequestTargetFilter(cx.plane().paths()),
        // Before its first stream opens, the request-header timeout; after its last stream ends,
        // the idle timeout. Frames that open no stream (PING, an unfinished header block) keep
        // nothing alive.
        new StreamlessTimeout(
            timeouts.requestHeader(),
            ConnectionTimeouts.counter(registry, ConnectionTimeouts.REQUEST_HEADER),
            timeouts.httpIdle(),
            ConnectionTimeouts.counter(registry, ConnectionTimeouts.HTTP_IDLE)),
        () -> new RequestHandler(cx));
  }

  /**
   * The server side of an h2c connection as the L7 path runs it, for every place that serves h2c
   * requests (the downstream here, and the HBONE server's per-request policy inside a stream): the
   * frame codec with the stream cap, header-list size and flood limits, one child channel per
   * stream whose requests arrive as HTTP objects with the request-target normalised by {@code
   * paths}, then {@code perStream}'s handler; connection errors end at {@link H2ConnectionErrors}.
   *
   * @param afterCodec a connection handler between the codec and the streams (a timeout), or null
   */
  public static void installH2Server(
      ChannelPipeline p,
      HttpLimits limits,
      RequestTargetFilter paths,
      @Nullable ChannelHandler afterCodec,
      Supplier<ChannelHandler> perStream) {
    p.addLast(
        flushes(),
        Http2FrameCodecBuilder.forServer()
            .initialSettings(h2Settings(limits))
            .decoderEnforceMaxRstFramesPerWindow(MAX_RST_FRAMES_PER_WINDOW, RST_WINDOW_SECONDS)
            .decoderEnforceMaxSmallContinuationFrames(MAX_SMALL_CONTINUATION_FRAMES)
            .build());
    if (afterCodec != null) {
      p.addLast(afterCodec);
    }
    p.addLast(new Http2MultiplexHandler(streams(paths, perStream)), H2ConnectionErrors.INSTANCE);
  }

  /**
   * {@link #installH2Server} for a connection that is itself a stream of another HTTP/2 connection
   * (h2c inside an HBONE stream): the same settings, limits, stream pipeline and error end, with
   * Netty's {@code Http2MultiplexCodec} in place of the frame codec and {@code
   * Http2MultiplexHandler}. The handler tells server from client by whether the channel's parent is
   * a {@code ServerChannel}; a stream's parent is the tunnel's socket, so it took the client's
   * stream 1 for the answer to an HTTP/1.1 upgrade of its own, and failed the connection. The
   * (deprecated) codec takes its role from the codec, as a nested server needs.
   */
  @SuppressWarnings("deprecation") // Http2MultiplexCodec: see above
  public static void installNestedH2Server(
      ChannelPipeline p,
      HttpLimits limits,
      RequestTargetFilter paths,
      Supplier<ChannelHandler> perStream) {
    p.addLast(
        flushes(),
        io.netty.handler.codec.http2.Http2MultiplexCodecBuilder.forServer(streams(paths, perStream))
            .initialSettings(h2Settings(limits))
            .decoderEnforceMaxRstFramesPerWindow(MAX_RST_FRAMES_PER_WINDOW, RST_WINDOW_SECONDS)
            .decoderEnforceMaxSmallContinuationFrames(MAX_SMALL_CONTINUATION_FRAMES)
            .build(),
        H2ConnectionErrors.INSTANCE);
  }

  /**
   * Responses come from upstream reads, not from this connection's: without this every stream's
   * response is a write of its own; with it, those finished in one event-loop turn share one.
   */
  private static FlushConsolidationHandler flushes() {
    return new FlushConsolidationHandler(
        FlushConsolidationHandler.DEFAULT_EXPLICIT_FLUSH_AFTER_FLUSHES, true);
  }

  /**
   * The stream cap and header-list size an h2c server advertises. With them, the codec's rapid
   * reset (CVE-2023-44487) limit: a client that resets more than {@link #MAX_RST_FRAMES_PER_WINDOW}
   * streams per window is sent GOAWAY and closed; and its CONTINUATION flood limit: more than
   * {@link #MAX_SMALL_CONTINUATION_FRAMES} small CONTINUATION frames in one header block is a
   * connection error. Netty's own defaults, stated so a Netty change cannot silently drop them.
   */
  private static Http2Settings h2Settings(HttpLimits limits) {
    return Http2Settings.defaultSettings()
        .maxHeaderListSize(limits.h2HeaderListSize())
        .maxConcurrentStreams(MAX_CONCURRENT_STREAMS);
  }

  /**
   * HTTP/2 frames ⇄ HTTP objects for every server stream: Netty's codec is {@code @Sharable}, so
   * one instance serves them all instead of one (and its inner encoder and decoder) per request.
   */
  private static final Http2StreamFrameToHttpObjectCodec STREAM_CONVERSION =
      new Http2StreamFrameToHttpObjectCodec(true);

  private static ChannelInitializer<Http2StreamChannel> streams(
      RequestTargetFilter paths, Supplier<ChannelHandler> perStream) {
    return new ChannelInitializer<Http2StreamChannel>() {
      @Override
      protected void initChannel(Http2StreamChannel ch) {
        ch.pipeline()
            .addLast(
                new H2StartLineGuard(), // before the conversion, which leaks on such a head
                STREAM_CONVERSION,
                paths, // :path normalised as an HTTP/1.1 target is
                perStream.get());
      }
    };
  }
}
