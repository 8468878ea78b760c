package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.AccessLog;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.Admissions;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.l7.path.PathSettings;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.transport.EpollRegistrationGuard;
import dev.nodemesh.proxy.transport.H2ConnectionErrors;
import dev.nodemesh.proxy.transport.StreamlessTimeout;
import dev.nodemesh.proxy.upstream.DirectDialer;
import dev.nodemesh.proxy.upstream.PathDecider;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The server side of HBONE for one pod: the pipeline of a connection accepted on the pod's 15008
 * listener. The certificate presented is the pod's own workload certificate (the listener says
 * which pod, so no SNI is needed); the client's chain is verified against the trust anchors and its
 * SPIFFE ID read from the URI SAN; then HTTP/2 with one {@link ConnectStreamHandler} per stream.
 */
public final class HboneServer {
  private static final Logger log = LoggerFactory.getLogger(HboneServer.class);

  private HboneServer() {}

  /**
   * What the server side takes from the data plane: the config, where it reports, the dialer that
   * delivers a stream to the pod's app, and the request-path normalisation the L7 check inside a
   * stream applies (the same settings as the L7 path's), and the registry of admitted connections
   * each allowed stream joins (re-checked when policy changes). Narrower than the data plane, so
   * the tunnel never imports what wires it.
   */
  public record Context(
      SnapshotHolder snapshots,
      ProxyMetrics metrics,
      AccessLog accessLog,
      DirectDialer direct,
      PathSettings paths,
      Admissions admissions) {}

  /** The child handler of the 15008 listener in {@code pod}'s namespace. */
  public static ChannelInitializer<SocketChannel> initializer(
      Tunnel tunnel, Context context, EnrolledPod pod) {
    return new ChannelInitializer<>() {
      @Override
      protected void initChannel(SocketChannel ch) {
        // A no-op on the pod listeners, which applied it before registration (ON_ACCEPT).
        EpollRegistrationGuard.apply(ch);
        // The pod listeners allow half-closure (for relays); a TLS connection whose peer sent FIN
        // is over, and must close rather than linger half-open with its HTTP/2 state.
        ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
        ch.pipeline().addLast("hbone-tls-setup", tlsSetup(tunnel, context, pod));
      }
    };
  }

  /** The first handler of an accepted connection (apart from the listener, for tests). */
  static ChannelHandler tlsSetup(Tunnel tunnel, Context context, EnrolledPod pod) {
    return new TlsSetup(tunnel, context, pod);
  }

  /**
   * When a server connection stops taking streams: the earlier {@code notAfter} of its handshake
   * certificates (the client's chain and the pod's own). Past it, each new CONNECT is refused with
   * RST_STREAM REFUSED_STREAM, the first refusal preceded by a GOAWAY so the client drains the
   * connection; streams already open go on. One per connection, touched only from its event loop.
   */
  static final class Expiry {
    final long atMillis;
    boolean goAwaySent;

    Expiry(long atMillis) {
      this.atMillis = atMillis;
    }
  }

  /**
   * Rapid reset (CVE-2023-44487) and CONTINUATION-flood limits of the server side, the h2c
   * downstream's ({@code l7.HttpProxy}): more RST_STREAM frames than this per window gets GOAWAY
   * (ENHANCE_YOUR_CALM) and a close; more small CONTINUATION frames in one header block is a
   * connection error. Only that connection is affected.
   */
  static final int MAX_RST_FRAMES_PER_WINDOW = 200;

  static final int RST_WINDOW_SECONDS = 30;
  static final int MAX_SMALL_CONTINUATION_FRAMES = 16;

  /** The HTTP/2 codec of a server connection, with its stream cap and flood limits. */
  static Http2FrameCodec codec(TunnelSettings s) {
    return Http2FrameCodecBuilder.forServer()
        .initialSettings(Tunnel.initialSettings(s).maxConcurrentStreams(s.serverMaxStreams()))
        .decoderEnforceMaxRstFramesPerWindow(MAX_RST_FRAMES_PER_WINDOW, RST_WINDOW_SECONDS)
        .decoderEnforceMaxSmallContinuationFrames(MAX_SMALL_CONTINUATION_FRAMES)
        .build();
  }

  /**
   * The HTTP/2 part of a server connection, after TLS and ALPN: the codec with its limits, the
   * no-stream timeout, one {@code streams} pipeline per CONNECT stream, and {@link
   * H2ConnectionErrors} last, so the codec's connection errors and a peer's reset end there (debug)
   * instead of at the pipeline's tail, which logged each at WARN with a stack trace.
   */
  static void addH2(
      ChannelPipeline p,
      TunnelSettings s,
      Counter idleTimeouts,
      ChannelInitializer<Http2StreamChannel> streams) {
    p.addLast("h2", codec(s));
    p.addLast(
        "h2-idle",
        new StreamlessTimeout(
            s.serverIdleTimeout(), idleTimeouts, s.serverIdleTimeout(), idleTimeouts));
    p.addLast("h2-streams", new Http2MultiplexHandler(streams));
    p.addLast("h2-errors", H2ConnectionErrors.INSTANCE);
  }

  /** Picks the pod's certificate (asynchronously), then installs TLS and starts reading. */
  private static final class TlsSetup extends ChannelInboundHandlerAdapter {
    private final Tunnel tunnel;
    private final Context context;
    private final EnrolledPod pod;

    TlsSetup(Tunnel tunnel, Context context, EnrolledPod pod) {
      this.tunnel = tunnel;
      this.context = context;
      this.pod = pod;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      Channel ch = ctx.channel();
      Workload self = PathDecider.configuredWorkload(context.snapshots().current(), pod);
      if (self == null) {
        log.warn(
            "HBONE connection to {}: the pod is not in the config, no identity to present", pod);
        tunnel.metrics().server().handshakeFailures().increment();
        ch.close();
        return;
      }
      SpiffeId id = SpiffeId.of(tunnel.trustDomain(), self);
      tunnel
          .tls()
          .server(id)
          .whenComplete(
              (sslContext, error) ->
                  ch.eventLoop().execute(() -> install(ctx, id, sslContext, error)));
    }

    private void install(
        ChannelHandlerContext ctx, SpiffeId id, @Nullable SslContext ssl, @Nullable Throwable e) {
      Channel ch = ctx.channel();
      if (ssl == null || e != null || !ch.isActive()) {
        if (e != null) {
          log.warn("HBONE: no certificate for {}: {}", id, e.toString());
          tunnel.metrics().server().handshakeFailures().increment();
        }
        ch.close();
        return;
      }
      ctx.pipeline()
          .addAfter(
              ctx.name(), "tls", Tunnel.withHandshakeTimeout(ssl.newHandler(ch.alloc()), tunnel));
      ctx.pipeline().addAfter("tls", "alpn", new ServerNegotiation(tunnel, context, pod));
      ctx.pipeline().remove(this);
      // Connection-level reads stay on: back-pressure is per stream, by HTTP/2 flow control.
      ch.config().setAutoRead(true);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      FatalErrors.check(cause);
      ctx.close();
    }
  }

  /** After the handshake: h2 only, the client's SPIFFE ID, then the HTTP/2 codec. */
  private static final class ServerNegotiation extends ApplicationProtocolNegotiationHandler {
    private final Tunnel tunnel;
    private final Context context;
    private final EnrolledPod pod;

    ServerNegotiation(Tunnel tunnel, Context context, EnrolledPod pod) {
      super("none");
      this.tunnel = tunnel;
      this.context = context;
      this.pod = pod;
    }

    @Override
    protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
      TunnelMetrics.Side m = tunnel.metrics().server();
      if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
        m.handshakeFailures().increment();
        log.debug("HBONE client {} negotiated {}, not h2", ctx.channel().remoteAddress(), protocol);
        ctx.close();
        return;
      }
      SpiffeId peer;
      Expiry expiry;
      try {
        SSLSession session = ctx.pipeline().get(SslHandler.class).engine().getSession();
        peer = PeerIdentity.of(session, tunnel.trustDomain());
        expiry = new Expiry(Tunnel.handshakeExpiry(session));
      } catch (SSLPeerUnverifiedException e) {
        m.handshakeFailures().increment();
        log.debug("HBONE client {} refused: {}", ctx.channel().remoteAddress(), e.getMessage());
        ctx.close();
        return;
      }
      InetAddress peerIp = ((InetSocketAddress) ctx.channel().remoteAddress()).getAddress();
      TunnelSettings s = tunnel.settings();
      Tunnel.tuneConnection(ctx.channel());
      addH2(
          ctx.pipeline(),
          s,
          tunnel.metrics().idleTimeouts(),
          new ChannelInitializer<Http2StreamChannel>() {
            @Override
            protected void initChannel(Http2StreamChannel stream) {
              stream.config().setAutoRead(false);
              stream.config().setWriteBufferWaterMark(Tunnel.STREAM_WATER_MARK);
              stream
                  .pipeline()
                  .addLast(
                      "connect",
                      new ConnectStreamHandler(tunnel, context, pod, peer, peerIp, expiry));
            }
          });
      Tunnel.growConnectionWindow(ctx.channel(), s);
      m.connectionsOpen().incrementAndGet();
      tunnel.serverConnection(ctx.channel());
      ctx.channel().closeFuture().addListener(f -> m.connectionsOpen().decrementAndGet());
    }

    @Override
    protected void handshakeFailure(ChannelHandlerContext ctx, Throwable cause) {
      tunnel.metrics().server().handshakeFailures().increment();
      Tunnel.countHandshakeTimeout(tunnel, cause);
      log.debug(
          "HBONE handshake from {} failed: {}", ctx.channel().remoteAddress(), cause.toString());
      ctx.close();
    }
  }
}
