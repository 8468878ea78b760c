package dev.nodemesh.proxy.l4;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import dev.nodemesh.proxy.upstream.HboneDialer;
import dev.nodemesh.proxy.upstream.UpstreamPath;
import dev.nodemesh.proxy.upstream.Upstreams;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Connects upstream along a decided {@link UpstreamPath} and, once connected, relays: the part the
 * inbound and outbound paths share. A socket path ends in a {@link RelaySession}; an HBONE path in
 * a {@link StreamRelay} on the CONNECT stream itself (a half-close travels as END_STREAM, a reset
 * as RST_STREAM).
 */
public final class Relays {
  private static final Logger log = LoggerFactory.getLogger(Relays.class);

  private Relays() {}

  /**
   * The idle timeout of an L4 relay to {@code service}: the {@code tcpIdleTimeout} of the Service's
   * TrafficPolicy when it sets one (zero: never), else {@code flag} ({@code --tcp-idle-timeout}). A
   * relay whose Service is unknown ({@code null}: a pod IP dialled directly, inbound plaintext)
   * gets the flag. Read from the snapshot the connection was routed by, so a policy change applies
   * to new connections only.
   */
  public static Duration idleTimeout(
      ConfigSnapshot snapshot, @Nullable NamespacedName service, Duration flag) {
    TrafficPolicy policy = service == null ? null : snapshot.trafficPolicy(service);
    Duration own = policy == null ? null : policy.tcpIdleTimeout();
    return own != null ? own : flag;
  }

  /**
   * Connects along {@code path} with {@code upstreams}' dialers and joins the two channels, filling
   * {@code accessLog} (null: this connection is not logged) with the upstream, its connect time,
   * the bytes and the response flags, and finishing it when the connection ends. On failure the
   * downstream connection is reset, so the client sees a refused connection, not an empty one. Call
   * on the downstream channel's event loop.
   */
  public static void connectAndRelay(
      Upstreams upstreams,
      Channel downstream,
      UpstreamPath path,
      ConnectionMeters meters,
      @Nullable ConnectionLog accessLog) {
    connectAndRelay(upstreams, downstream, path, meters, accessLog, Duration.ZERO, null);
  }

  /**
   * As above, and a relay that moves no byte either way for {@code idle} is closed on both sides
   * ({@code --tcp-idle-timeout}; zero: never), counted in {@code registry}.
   */
  public static void connectAndRelay(
      Upstreams upstreams,
      Channel downstream,
      UpstreamPath path,
      ConnectionMeters meters,
      @Nullable ConnectionLog accessLog,
      Duration idle,
      @Nullable MeterRegistry registry) {
    if (!idle.isZero() && registry != null) {
      // From the start: a relay whose upstream never answers is idle as well.
      downstream.pipeline().addFirst(RelayIdleTimeout.NAME, new RelayIdleTimeout(idle, registry));
    }
    // Java 17: no switch over the sealed type; every permitted type is named here.
    if (path instanceof UpstreamPath.Hbone h) {
      tunnelRelay(upstreams.hbone(), downstream, h, meters);
    } else if (path instanceof UpstreamPath.NoIdentity n) {
      meters.failed().increment();
      log.debug("{}", Upstreams.noIdentity(n).getMessage());
      reset(downstream);
    } else {
      socketRelay(upstreams, downstream, path, meters, accessLog); // Direct, SameNode
    }
  }

  private static void socketRelay(
      Upstreams upstreams,
      Channel downstream,
      UpstreamPath path,
      ConnectionMeters meters,
      @Nullable ConnectionLog accessLog) {
    long start = System.nanoTime();
    InetSocketAddress to = path.target();
    if (accessLog != null) {
      accessLog.upstream(to);
    }
    EarlyData early = new EarlyData();
    downstream.pipeline().addLast(EarlyData.NAME, early);
    upstreams
        .direct()
        .dial(downstream, path)
        .addListener(
            (Future<Channel> f) -> {
              if (!f.isSuccess()) {
                meters.failed().increment();
                log.debug("upstream {} from {} failed: {}", to, path.from(), f.cause().toString());
                reset(downstream);
                if (accessLog != null) {
                  accessLog.flag(ResponseFlag.UF).finish();
                }
                return;
              }
              Channel upstream = f.getNow();
              if (!downstream.isActive()) {
                upstream.close();
                if (accessLog != null) {
                  accessLog.upstreamConnected(System.nanoTime() - start);
                  accessLog.flag(ResponseFlag.DR).finish();
                }
                return;
              }
              long connectNanos = System.nanoTime() - start;
              meters.connected(connectNanos);
              if (accessLog != null) {
                accessLog.upstreamConnected(connectNanos);
              }
              ArrayDeque<ByteBuf> pending = early.drain();
              boolean eof = early.inputShutdown();
              downstream.pipeline().remove(early);
              RelaySession.start(
                  downstream,
                  upstream,
                  pending,
                  eof,
                  new RelaySession.Listener() {
                    @Override
                    public void bytes(boolean fromDownstream, int count) {
                      (fromDownstream ? meters.sentBytes() : meters.receivedBytes())
                          .increment(count);
                    }

                    @Override
                    public void failed(boolean onDownstream, Throwable error) {
                      if (accessLog != null) {
                        accessLog.flag(onDownstream ? ResponseFlag.DR : ResponseFlag.UR);
                      }
                    }

                    @Override
                    public void closed(long down, long up, @Nullable Throwable error) {
                      meters.ended(System.nanoTime() - start);
                      if (accessLog != null) {
                        accessLog.bytes(down, up).finish();
                      }
                    }
                  });
            });
  }

  /**
   * Carries {@code downstream} (a socket accepted in the source's namespace) through a pooled HBONE
   * stream. On any failure the downstream is reset. Not access-logged on this side: the receiving
   * node logs each stream with both identities.
   */
  private static void tunnelRelay(
      @Nullable HboneDialer hbone,
      Channel downstream,
      UpstreamPath.Hbone path,
      ConnectionMeters meters) {
    long start = System.nanoTime();
    EarlyData early = new EarlyData();
    downstream.pipeline().addLast(EarlyData.NAME, early);
    // What the client sends first (a request, a TLS ClientHello) goes right behind the CONNECT,
    // not one round trip between the nodes later, after the 200 (EarlyData's class comment). One
    // read: the copies held for a retry stay bounded.
    downstream.read();
    Future<Http2StreamChannel> opened =
        hbone != null
            ? hbone.openStream(downstream, path, early::forwardTo)
            : downstream.eventLoop().newFailedFuture(new IllegalStateException("no tunnel"));
    opened.addListener(
        (Future<Http2StreamChannel> f) -> {
          if (!f.isSuccess()) {
            meters.failed().increment();
            log.debug("tunnel to {} failed: {}", path.target(), String.valueOf(f.cause()));
            reset(downstream);
            return;
          }
          Http2StreamChannel stream = f.getNow();
          if (!downstream.isActive()) {
            stream.close();
            return;
          }
          meters.connected(System.nanoTime() - start);
          long forwarded = early.forwarded();
          if (forwarded > 0) {
            meters.sentBytes().increment(forwarded);
          }
          ArrayDeque<ByteBuf> pending = early.drain();
          boolean eof = early.inputShutdown();
          downstream.pipeline().remove(early);
          StreamRelay.start(
              downstream,
              stream,
              pending,
              eof,
              new StreamRelay.Listener() {
                @Override
                public void bytes(boolean fromSocket, int count) {
                  (fromSocket ? meters.sentBytes() : meters.receivedBytes()).increment(count);
                }

                @Override
                public void closed(@Nullable Throwable error) {
                  meters.ended(System.nanoTime() - start);
                }
              });
        });
  }

  /**
   * Refuses a captured connection the proxy will not relay (no route): resets it and logs it with
   * {@link ResponseFlag#NR}.
   */
  public static void refuse(Channel ch, @Nullable ConnectionLog accessLog) {
    reset(ch);
    if (accessLog != null) {
      accessLog.flag(ResponseFlag.NR).finish();
    }
  }

  /**
   * The original destination of a captured connection, or null after resetting it when the kernel
   * has none (the connection did not come through the redirect rules) or when it was addressed to
   * the listener that accepted it (see {@link #addressedToListener}).
   */
  public static @Nullable InetSocketAddress originalDestination(
      Channel ch, Object capturedFor, DestinationLookup lookup) {
    InetSocketAddress original;
    try {
      original = lookup.get();
    } catch (IOException e) {
      log.warn(
          "connection captured for {} has no original destination: {}",
          capturedFor,
          e.getMessage());
      reset(ch);
      return null;
    }
    Channel listener = ch.parent();
    if (listener != null
        && addressedToListener(original, ch.localAddress(), listener.localAddress())) {
      log.warn(
          "connection captured for {} from {} was addressed to the proxy's own listener {}: reset,"
              + " never relayed back into the proxy",
          capturedFor,
          ch.remoteAddress(),
          original);
      reset(ch);
      return null;
    }
    return original;
  }

  /**
   * Whether a captured connection's original destination is the very listener that accepted it: the
   * same local address, at the listener's port. Nothing redirected such a connection (an app
   * connecting to 127.0.0.1:15001 or to its pod's 15006 itself, or a lookup that fell back to
   * conntrack for a connection that was never rewritten, which answers with the listener), and
   * relaying it would dial the listener again from the same namespace: each round is one more
   * connection accepted for the pod, until its budget refuses one and the chain collapses.
   */
  static boolean addressedToListener(
      InetSocketAddress original, @Nullable SocketAddress local, @Nullable SocketAddress listener) {
    return local instanceof InetSocketAddress l
        && listener instanceof InetSocketAddress bound
        && original.getPort() == bound.getPort()
        && original.getPort() == l.getPort()
        && original.getAddress() != null
        && original.getAddress().equals(l.getAddress());
  }

  /** Where a captured connection meant to go: SO_ORIGINAL_DST, or the eBPF record. */
  @FunctionalInterface
  public interface DestinationLookup {
    InetSocketAddress get() throws IOException;
  }

  /** Closes with RST (SO_LINGER 0): the client learns the connection failed. */
  public static void reset(Channel ch) {
    if (ch.isActive()) {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
    }
    ch.close();
  }
}
