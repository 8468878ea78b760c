package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.l4.EarlyData;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.channel.WriteBufferWaterMark;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.ChannelGroupFuture;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http2.DefaultHttp2GoAwayFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.DefaultHttp2WindowUpdateFrame;
import io.netty.handler.codec.http2.Http2Connection;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2Settings;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.GlobalEventExecutor;
import io.netty.util.concurrent.Promise;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * HBONE as the rest of the data plane sees it: whether a connection crosses nodes ({@link
 * #crossesNodes}), the client path ({@link #connect}), and the server listener's pipeline ({@link
 * HboneServer}). Holds this node's name, the trust domain, the TLS contexts, the authorizer the
 * server side asks, the settings, the metrics and one client pool per event loop.
 */
public final class Tunnel {
  private static final Logger log = LoggerFactory.getLogger(Tunnel.class);

  private final String nodeName;
  private final String trustDomain;
  private final TunnelTls tls;
  private final Authorizer authorizer;
  private final TunnelSettings settings;
  private final TunnelMetrics metrics;
  private final Clock clock;
  private final ConcurrentHashMap<EventLoop, TunnelPool> pools = new ConcurrentHashMap<>();
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

  /**
   * True when traffic to {@code endpoint} goes through a tunnel: a mesh workload scheduled on
   * another node (or on none) that is not enrolled here. Pods on this node keep the direct path.
   */
  public static boolean crossesNodes(Workload endpoint, String nodeName, boolean enrolledHere) {
    return !enrolledHere && !endpoint.nodeName().equals(nodeName);
  }

  public boolean crossesNodes(Workload endpoint, boolean enrolledHere) {
    return crossesNodes(endpoint, nodeName, enrolledHere);
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

  /** Client connections held now over every loop (call from a test or admin, racy by nature). */
  int pooledConnections() {
    int n = 0;
    for (TunnelPool p : pools.values()) {
      n += p.size();
    }
    return n;
  }

  /**
   * Carries {@code downstream} (a socket accepted in {@code source}'s namespace) to {@code target}
   * on {@code destination} through a pooled HBONE stream. On any failure the downstream is reset.
   * Call on the downstream's event loop.
   */
  public void connect(
      DataPlane plane,
      Channel downstream,
      EnrolledPod source,
      Workload destination,
      InetSocketAddress target,
      ConnectionMeters meters) {
    long start = System.nanoTime();
    EarlyData early = new EarlyData();
    downstream.pipeline().addLast(EarlyData.NAME, early);
    open(plane, downstream, source, destination, target)
        .addListener(
            (Future<Http2StreamChannel> f) -> {
              if (!f.isSuccess()) {
                meters.failed().increment();
                log.debug("tunnel to {} failed: {}", target, String.valueOf(f.cause()));
                Relays.reset(downstream);
                return;
              }
              Http2StreamChannel stream = f.getNow();
              if (!downstream.isActive()) {
                stream.close();
                return;
              }
              meters.connected(System.nanoTime() - start);
              ArrayDeque<ByteBuf> pending = early.drain();
              boolean eof = early.inputShutdown();
              downstream.pipeline().remove(early);
              StreamRelay.start(downstream, stream, pending, eof, relayListener(meters, start));
            });
  }

  /**
   * A CONNECT stream to {@code target} on {@code destination}, answered 200, on a pooled connection
   * presenting {@code source}'s workload certificate (made from its namespace when a new one is
   * needed). The stream does not auto-read. Completes on {@code onLoop}'s event loop, which must be
   * the caller's; fails when the source has no identity in the config (never plaintext), the
   * connection cannot be made, or the server refuses the stream.
   */
  public Future<Http2StreamChannel> open(
      DataPlane plane,
      Channel onLoop,
      EnrolledPod source,
      Workload destination,
      InetSocketAddress target) {
    Promise<Http2StreamChannel> result = onLoop.eventLoop().newPromise();
    Workload self = HboneServer.workloadOf(plane.snapshots().current(), source);
    if (self == null) {
      return result.setFailure(
          new IOException("tunnel from " + source + ": the pod is not in the config"));
    }
    TunnelPool.Key key =
        new TunnelPool.Key(
            SpiffeId.of(trustDomain, self),
            target.getAddress(),
            SpiffeId.of(trustDomain, destination));
    attempt(plane, onLoop, source, key, target, result, true);
    return result;
  }

  /**
   * Opens a stream and sends CONNECT. A stream the server refused without processing it (RST_STREAM
   * REFUSED_STREAM, e.g. because the connection's certificates expired by the server's clock, or
   * above the last stream id of a GOAWAY) is tried once more: the refused connection drains on the
   * server's GOAWAY, so the pool makes a new one. Nothing was relayed yet.
   */
  private void attempt(
      DataPlane plane,
      Channel onLoop,
      EnrolledPod source,
      TunnelPool.Key key,
      InetSocketAddress target,
      Promise<Http2StreamChannel> result,
      boolean mayRetry) {
    EventLoop loop = onLoop.eventLoop();
    TunnelPool pool = pools.computeIfAbsent(loop, l -> new TunnelPool(this, l));
    pool.openStream(plane, key, source.netns(), onLoop)
        .addListener(
            (Future<Http2StreamChannel> f) -> {
              if (!f.isSuccess()) {
                result.tryFailure(f.cause());
                return;
              }
              Http2StreamChannel stream = f.getNow();
              if (result.isDone()) {
                stream.close();
                return;
              }
              stream
                  .pipeline()
                  .addLast(
                      "connect-response",
                      new ConnectResponseHandler(
                          answer -> {
                            if (answer == ConnectResponseHandler.Answer.OK) {
                              if (!result.trySuccess(stream)) {
                                stream.close();
                              }
                              return;
                            }
                            if (answer == ConnectResponseHandler.Answer.REFUSED && mayRetry) {
                              log.debug("tunnel {}: stream refused, trying a new connection", key);
                              // Once the connection has seen the GOAWAY (read after the streams'
                              // notices) and left the pool.
                              loop.execute(
                                  () -> attempt(plane, onLoop, source, key, target, result, false));
                              return;
                            }
                            result.tryFailure(
                                new IOException("tunnel " + key + ": CONNECT " + answer));
                          }));
              stream.writeAndFlush(
                  new DefaultHttp2HeadersFrame(
                      new DefaultHttp2Headers()
                          .method(HttpMethod.CONNECT.asciiName())
                          .authority(ConnectTarget.format(target))));
              stream.read();
            });
  }

  private static StreamRelay.Listener relayListener(ConnectionMeters meters, long start) {
    return new StreamRelay.Listener() {
      @Override
      public void bytes(boolean fromSocket, int count) {
        (fromSocket ? meters.sentBytes() : meters.receivedBytes()).increment(count);
      }

      @Override
      public void closed(@Nullable Throwable error) {
        meters.ended(System.nanoTime() - start);
      }
    };
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
