package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.identity.IdentityProvider;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.ChannelGroupFuture;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.handler.ssl.SslHandler;
import io.netty.handler.ssl.SslHandshakeTimeoutException;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * What both sides of HBONE share: this node's name, the trust domain, the TLS contexts, the
 * authorizer the 15008 listeners ask, the settings, the metrics and the clock certificate expiry is
 * compared against. The client side (pooled CONNECT streams) and the server side are built on it;
 * whether a destination takes the tunnel is the upstream path decision's to say.
 */
public final class Tunnel {
  private final String nodeName;
  private final String trustDomain;
  private final TunnelTls tls;
  private final Authorizer authorizer;
  private final TunnelSettings settings;
  private final TunnelMetrics metrics;
  private final Clock clock;
  private final ChannelGroup serverConnections =
      new DefaultChannelGroup("hbone-server", GlobalEventExecutor.INSTANCE);

  public Tunnel(
      String nodeName,
      String trustDomain,
      IdentityProvider identities,
      Authorizer authorizer,
      TunnelSettings settings,
      MeterRegistry registry) {
    this(nodeName, trustDomain, identities, authorizer, settings, registry, Clock.systemUTC());
  }

  /**
   * As above, with the clock that certificate expiry is compared against (both sides: a client
   * connection stops taking streams, a server connection refuses them), so tests can move time.
   */
  public Tunnel(
      String nodeName,
      String trustDomain,
      IdentityProvider identities,
      Authorizer authorizer,
      TunnelSettings settings,
      MeterRegistry registry,
      Clock clock) {
    this.clock = clock;
    this.nodeName = nodeName;
    this.trustDomain = trustDomain;
    this.tls = new TunnelTls(identities);
    this.authorizer = authorizer;
    this.settings = settings;
    this.metrics = new TunnelMetrics(registry);
  }

  /** This node's name: a destination on another node is reached through the tunnel. */
  public String nodeName() {
    return nodeName;
  }

  public String trustDomain() {
    return trustDomain;
  }

  public TunnelTls tls() {
    return tls;
  }

  public Authorizer authorizer() {
    return authorizer;
  }

  public TunnelSettings settings() {
    return settings;
  }

  public TunnelMetrics metrics() {
    return metrics;
  }

  /** Remembers an HBONE server connection (HTTP/2 ready) until it closes, for {@link #goAway}. */
  void serverConnection(Channel ch) {
    serverConnections.add(ch);
  }

  /**
   * Sends GOAWAY (NO_ERROR) on every HBONE server connection this node holds: streams already open
   * finish, clients open new ones on new connections. For a graceful shutdown or maintenance (and
   * tests); connections accepted afterwards are not affected. Completes once every GOAWAY is
   * written.
   */
  public ChannelGroupFuture goAway() {
    return serverConnections.writeAndFlush(new DefaultHttp2GoAwayFrame(Http2Error.NO_ERROR));
  }

  /** The clock certificate expiry is checked against. */
  Clock clock() {
    return clock;
  }

  /**
   * The earlier {@code notAfter} of the certificates a handshake used, the peer's chain and ours:
   * past it, the connection takes no new stream on either side.
   */
  static long handshakeExpiry(SSLSession session) throws SSLPeerUnverifiedException {
    long at = Long.MAX_VALUE;
    List<Certificate> certs = new ArrayList<>(Arrays.asList(session.getPeerCertificates()));
    Certificate[] local = session.getLocalCertificates();
    if (local != null) {
      certs.addAll(Arrays.asList(local));
    }
    for (Certificate c : certs) {
      if (c instanceof X509Certificate x) {
        at = Math.min(at, x.getNotAfter().getTime());
      }
    }
    return at;
  }

  /** {@code tls} with the tunnel's handshake timeout ({@code --tunnel-handshake-timeout}). */
  static SslHandler withHandshakeTimeout(SslHandler tls, Tunnel tunnel) {
    tls.setHandshakeTimeoutMillis(tunnel.settings().handshakeTimeout().toMillis());
    return tls;
  }

  /** Counts a handshake that failed because it ran out of time. */
  static void countHandshakeTimeout(Tunnel tunnel, Throwable cause) {
    if (cause instanceof SslHandshakeTimeoutException) {
      tunnel.metrics().handshakeTimeouts().increment();
    }
  }

  /**
   * SETTINGS_MAX_FRAME_SIZE both sides advertise: the peer sends DATA frames of up to this size
   * (the default, 16 KiB, cuts every 64 KiB socket read into four frames, each handled and flushed
   * to the app on its own by the receiving stream channel). TLS records stay at most 16 KiB.
   */
  static final int MAX_FRAME_SIZE = 64 << 10;

  /**
   * Write buffer water marks of the TLS connection. Its writability gates every stream on it: the
   * HTTP/2 flow controller writes no more than {@code bytesBeforeUnwritable} per flush, so Netty's
   * default 32/64 KiB held bulk transfers to 64 KiB per round trip through the event loop.
   */
  static final WriteBufferWaterMark CONNECTION_WATER_MARK =
      new WriteBufferWaterMark(256 << 10, 1 << 20);

  /**
   * Write buffer water marks of each CONNECT stream channel. A stream's pending bytes are its DATA
   * frames not yet written to the TLS socket (queued in the HTTP/2 flow controller or waiting for
   * the consolidated flush), and the relay reads its socket only while the stream is writable. With
   * Netty's default 32/64 KiB every full 64 KiB socket read (a DATA frame counts a little over its
   * content) turned the stream unwritable until that frame had gone through the consolidated flush:
   * two {@code epoll_ctl} calls per read (interest off, then on again from the writability event),
   * 31 per MB moved, and no read overlapped a TLS write. At 128 KiB one read may wait unsent (0.2
   * {@code epoll_ctl} per MB); the second stops the relay, so a stream holds at most 128 KiB plus
   * one read its peer has not taken: a peer that stops returning window pins at most 192 KiB per
   * stream, 19 MiB for a connection's 100 streams.
   */
  static final WriteBufferWaterMark STREAM_WATER_MARK =
      new WriteBufferWaterMark(64 << 10, 128 << 10);

  /** The HTTP/2 settings one side of a tunnel connection starts with. */
  static Http2Settings initialSettings(TunnelSettings s) {
    return Http2Settings.defaultSettings()
        .initialWindowSize(s.streamWindow())
        .maxFrameSize(MAX_FRAME_SIZE);
  }

  /**
   * Prepares a handshaken tunnel connection for the HTTP/2 handlers added after this: larger write
   * water marks, and flush consolidation in front of TLS. Every stream's flush reaches the
   * connection; without consolidation each became its own TLS record and {@code write} syscall (32
   * busy streams read in one event loop pass made 32 writes). Flushes are now gathered until the
   * end of the connection's read, or until the event loop's task pass when they come from outside
   * it (a pod socket's read), up to 256 at once.
   */
  static void tuneConnection(Channel ch) {
    ch.config().setWriteBufferWaterMark(CONNECTION_WATER_MARK);
    ch.pipeline().addLast("flush-consolidation", new FlushConsolidationHandler(256, true));
  }

  /**
   * Raises the connection-level receive window to the configured size. The frame codec already
   * grows it to twice the initial stream window when it is added; a stream-less WINDOW_UPDATE frame
   * written through it adds the rest (the codec applies it to its local connection window).
   */
  static void growConnectionWindow(Channel ch, TunnelSettings s) {
    Http2FrameCodec codec = ch.pipeline().get(Http2FrameCodec.class);
    if (codec == null) {
      return;
    }
    Http2Connection c = codec.connection();
    int delta = s.connectionWindow() - c.local().flowController().windowSize(c.connectionStream());
    if (delta > 0) {
      ch.writeAndFlush(new DefaultHttp2WindowUpdateFrame(delta));
    }
  }
}
