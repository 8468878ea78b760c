package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.upstream.DirectDialer;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.ssl.ApplicationProtocolNames;
import io.netty.handler.ssl.ApplicationProtocolNegotiationHandler;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One pooled HBONE client connection: TCP from the source pod's namespace (with the proxy mark) to
 * the destination pod's 15008, TLS 1.3 presenting the source workload's certificate, the server's
 * SPIFFE ID checked against the expected one, then HTTP/2 carrying up to {@link
 * TunnelSettings#maxStreamsPerConnection()} CONNECT streams. Lives on one event loop and is only
 * touched from it. Streams asked for while it connects wait here and are opened once it is ready,
 * or failed with the reason it could not be.
 */
final class TunnelConnection {
  private static final Logger log = LoggerFactory.getLogger(TunnelConnection.class);

  private enum State {
    CONNECTING,
    READY,
    CLOSED
  }

  private final Tunnel tunnel;
  private final TunnelPool pool;
  private final TunnelPool.Key key;
  private final ArrayDeque<Promise<Http2StreamChannel>> waiting = new ArrayDeque<>();
  private State state = State.CONNECTING;
  private boolean draining;
  private int streams;
  private @Nullable Channel channel;
  private @Nullable ScheduledFuture<?> idle;

  /** The earlier notAfter of the two certificates of the handshake, once it is done. */
  private long expiresAtMillis = Long.MAX_VALUE;

  TunnelConnection(Tunnel tunnel, TunnelPool pool, TunnelPool.Key key) {
    this.tunnel = tunnel;
    this.pool = pool;
    this.key = key;
  }

  /**
   * Takes one stream slot for {@code p}, or returns false when full or going away. A connection
   * whose handshake certificates (ours or the server's) have expired takes no new stream: it drains
   * like after a GOAWAY, so new streams go over a connection made with the current, rotated ones.
   */
  boolean tryReserve(Promise<Http2StreamChannel> p) {
    if (state == State.READY && !draining && tunnel.clock().millis() >= expiresAtMillis) {
      log.debug("HBONE {}: its certificates expired, draining", key);
      drain();
    }
    if (state == State.READY && !draining && goAwayReceived()) {
      drain(); // a GOAWAY read but not yet seen by GoAwayWatcher
    }
    if (state == State.CLOSED
        || draining
        || streams >= tunnel.settings().maxStreamsPerConnection()) {
      return false;
    }
    streams++;
    if (idle != null) {
      idle.cancel(false);
      idle = null;
    }
    if (state == State.READY) {
      open(p);
    } else {
      waiting.add(p);
    }
    return true;
  }

  int streams() {
    return streams;
  }

  void connect(DirectDialer direct, NetworkNamespace from, Channel downstream) {
    tunnel
        .tls()
        .client(key.source())
        .whenComplete(
            (ssl, error) ->
                pool.loop().execute(() -> connected(direct, from, downstream, ssl, error)));
  }

  private void connected(
      DirectDialer direct,
      NetworkNamespace from,
      Channel downstream,
      @Nullable SslContext ssl,
      @Nullable Throwable error) {
    if (ssl == null || error != null) {
      close(new IOException("no certificate for " + key.source() + ": " + error, error));
      return;
    }
    InetSocketAddress to = new InetSocketAddress(key.destination(), NodeProxyConfig.HBONE_PORT);
    direct
        .connect(downstream, from, to)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  Channel ch = f.channel();
                  if (!f.isSuccess()) {
                    ch.close();
                    close(new IOException("HBONE connect to " + to + " failed", f.cause()));
                    return;
                  }
                  channel = ch;
                  ch.closeFuture()
                      .addListener(
                          c -> close(new IOException("HBONE connection to " + to + " closed")));
                  if (state == State.CLOSED) {
                    ch.close();
                    return;
                  }
                  // Upstream sockets allow half-closure (for relays); the server's FIN ends a
                  // tunnel connection.
                  ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
                  ch.pipeline()
                      .addLast(
                          "tls", Tunnel.withHandshakeTimeout(ssl.newHandler(ch.alloc()), tunnel));
                  ch.pipeline().addLast("alpn", new ClientNegotiation());
                  ch.config().setOption(ChannelOption.AUTO_READ, true);
                });
  }

  private void ready(Channel ch) {
    TunnelSettings s = tunnel.settings();
    Tunnel.tuneConnection(ch);
    ch.pipeline()
        .addLast(
            "h2",
            Http2FrameCodecBuilder.forClient()
                .initialSettings(Tunnel.initialSettings(s).pushEnabled(false))
                .build());
    ch.pipeline()
        .addLast(
            "h2-streams",
            new Http2MultiplexHandler(
                new ChannelInitializer<Http2StreamChannel>() {
                  @Override
                  protected void initChannel(Http2StreamChannel unexpected) {
                    unexpected.close(); // servers do not open streams on a tunnel
                  }
                }));
    ch.pipeline().addLast("goaway", new GoAwayWatcher());
    Tunnel.growConnectionWindow(ch, s);
    state = State.READY;
    TunnelMetrics.Side m = tunnel.metrics().client();
    m.connectionsOpen().incrementAndGet();
    ch.closeFuture().addListener(f -> m.connectionsOpen().decrementAndGet());
    Promise<Http2StreamChannel> p;
    while ((p = waiting.poll()) != null) {
      open(p);
    }
    if (streams == 0) {
      scheduleIdle();
    }
  }

  private void open(Promise<Http2StreamChannel> p) {
    Channel ch = channel;
    if (ch == null) {
      released();
      p.tryFailure(new IllegalStateException("HBONE connection not ready"));
      return;
    }
    new Http2StreamChannelBootstrap(ch)
        .option(ChannelOption.AUTO_READ, false)
        .option(ChannelOption.WRITE_BUFFER_WATER_MARK, Tunnel.STREAM_WATER_MARK)
        .handler(new ChannelInboundHandlerAdapter())
        .open()
        .addListener(
            (Future<Http2StreamChannel> f) -> {
              if (!f.isSuccess()) {
                released();
                p.tryFailure(f.cause());
                return;
              }
              Http2StreamChannel stream = f.getNow();
              tunnel.metrics().client().streamsOpened().increment();
              stream.closeFuture().addListener(c -> released());
              if (!p.trySuccess(stream)) {
                stream.close();
              }
            });
  }

  private void released() {
    streams--;
    if (streams == 0 && state == State.READY) {
      if (draining) {
        close(null);
      } else {
        scheduleIdle();
      }
    }
  }

  private void scheduleIdle() {
    long nanos = tunnel.settings().idleTimeout().toNanos();
    idle =
        pool.loop()
            .schedule(
                () -> {
                  if (streams == 0) {
                    log.debug("HBONE {} idle, closing", key);
                    close(null);
                  }
                },
                nanos,
                TimeUnit.NANOSECONDS);
  }

  /** Ends the connection: no new streams, waiting ones fail, the socket closes. */
  void close(@Nullable Throwable cause) {
    if (state == State.CLOSED) {
      return;
    }
    state = State.CLOSED;
    pool.remove(this);
    if (idle != null) {
      idle.cancel(false);
    }
    Throwable why = cause != null ? cause : new IOException("HBONE connection closed");
    Promise<Http2StreamChannel> p;
    while ((p = waiting.poll()) != null) {
      streams--;
      p.tryFailure(why);
    }
    if (cause != null) {
      log.debug("HBONE {} ended: {}", key, cause.toString());
    }
    Channel ch = channel;
    if (ch != null) {
      ch.close();
    }
  }

  private boolean goAwayReceived() {
    Channel ch = channel;
    Http2FrameCodec codec = ch == null ? null : ch.pipeline().get(Http2FrameCodec.class);
    return codec != null && codec.connection().goAwayReceived();
  }

  TunnelPool.Key key() {
    return key;
  }

  /** No new streams; open ones finish, then the connection closes. */
  private void drain() {
    draining = true;
    pool.remove(this);
    if (streams == 0) {
      close(null);
    }
  }

  /** After the handshake: h2 only, and the server must be the identity the client expects. */
  private final class ClientNegotiation extends ApplicationProtocolNegotiationHandler {
    ClientNegotiation() {
      super("none");
    }

    @Override
    protected void configurePipeline(ChannelHandlerContext ctx, String protocol) {
      TunnelMetrics.Side m = tunnel.metrics().client();
      if (!ApplicationProtocolNames.HTTP_2.equals(protocol)) {
        m.handshakeFailures().increment();
        close(new IOException("HBONE server negotiated " + protocol + ", not h2"));
        return;
      }
      SpiffeId server;
      try {
        SSLSession session = ctx.pipeline().get(SslHandler.class).engine().getSession();
        server = PeerIdentity.of(session, tunnel.trustDomain());
        expiresAtMillis = Tunnel.handshakeExpiry(session);
      } catch (SSLPeerUnverifiedException e) {
        m.handshakeFailures().increment();
        close(e);
        return;
      }
      if (!server.equals(key.expected())) {
        m.handshakeFailures().increment();
        log.warn(
            "HBONE server {} is {}, expected {}: refused",
            ctx.channel().remoteAddress(),
            server,
            key.expected());
        close(
            new SSLPeerUnverifiedException("server is " + server + ", expected " + key.expected()));
        return;
      }
      ready(ctx.channel());
    }

    @Override
    protected void handshakeFailure(ChannelHandlerContext ctx, Throwable cause) {
      tunnel.metrics().client().handshakeFailures().increment();
      Tunnel.countHandshakeTimeout(tunnel, cause);
      close(cause);
    }
  }

  /** A GOAWAY: open streams finish, new ones go to another connection. */
  private final class GoAwayWatcher extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (msg instanceof Http2GoAwayFrame) {
        drain();
      }
      ReferenceCountUtil.release(msg);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      FatalErrors.check(cause);
      close(cause);
    }
  }
}
