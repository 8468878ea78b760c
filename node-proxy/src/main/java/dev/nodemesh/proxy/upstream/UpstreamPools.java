package dev.nodemesh.proxy.upstream;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.liveness.FatalErrors;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Upstream HTTP connections, pooled per event loop and per (endpoint address, namespace the socket
 * is made in, protocol, tunnelled or not), so a pool is only ever touched by its own loop: no
 * locks. HTTP/1.1 connections are kept alive and reused one exchange at a time; HTTP/2 shares one
 * connection per endpoint and opens a stream per exchange. Connections are made by the {@link
 * Dialer} along the request's {@link UpstreamPath}, exactly as the L4 path makes them: a socket in
 * a pod's namespace with the proxy mark, or, to an endpoint on another node, a CONNECT stream in
 * the source workload's pooled HBONE tunnel (mutual TLS, the receiving node's policy). One instance
 * per data plane ({@link Upstreams#http()}); its per-loop maps go when their loop terminates.
 *
 * <p>An exchange is a channel that takes {@link HttpObject}s (request) and yields them (response)
 * through its {@link Exchange} handler.
 *
 * <p>Idle timeout: an HTTP/1.1 connection (or tunnelled CONNECT stream) back in the pool, and an
 * HTTP/2 connection whose last stream closed, is closed when it stays unused for the idle timeout
 * the caller passes ({@code nodemesh.http.upstreamIdleTimeoutMillis}): a timer on the connection's
 * own event loop (for HTTP/1.1 one per connection, not per park: see {@link EndpointPool}). So the
 * sockets (and the peer's) of a Service that is no longer called, or of a removed pod, are given
 * back. Limit: no cap on HTTP/2 concurrent streams.
 */
public final class UpstreamPools {
  private static final int MAX_IDLE_PER_ENDPOINT = 64;
  // Netty's frame <-> HTTP object codec is @Sharable: one for every client stream.
  private static final Http2StreamFrameToHttpObjectCodec STREAM_CONVERSION =
      new Http2StreamFrameToHttpObjectCodec(false);

  private final Dialer dialer;
  private final ConcurrentHashMap<EventExecutor, Map<Key, EndpointPool>> byLoop =
      new ConcurrentHashMap<>();

  /** Pools whose new connections {@code dialer} opens. */
  public UpstreamPools(Dialer dialer) {
    this.dialer = dialer;
  }

  /**
   * A connection to a pod on this node is made from its caller's address, so it serves only that
   * caller's requests: the app must never see one client's requests come from another's address.
   */
  private record Key(
      InetSocketAddress address,
      NetworkNamespace from,
      boolean h2,
      boolean tunnelled,
      @Nullable InetAddress caller) {
    static Key of(UpstreamPath path, boolean h2) {
      boolean tunnelled =
          path instanceof UpstreamPath.Hbone || path instanceof UpstreamPath.NoIdentity;
      InetAddress caller = path instanceof UpstreamPath.SameNode s ? s.caller() : null;
      return new Key(path.target(), path.from(), h2, tunnelled, caller);
    }
  }

  /** Where an exchange delivers its response; called on the exchange's event loop. */
  public interface ResponseSink {
    void response(Channel exchange, HttpObject msg);

    void closed(Channel exchange);

    void writable(Channel exchange, boolean writable);

    /** The exchange's transport finished a read: a good moment to flush what it produced. */
    default void readComplete(Channel exchange) {}
  }

  /** The last handler of an exchange channel: hands what it reads to the current sink. */
  static final class Exchange extends ChannelInboundHandlerAdapter {
    private @Nullable ResponseSink sink;
    private @Nullable EndpointPool pool;
    // Idle-pool state of this connection, touched only on its loop (see EndpointPool#park).
    private boolean parked;
    private long parkedAt;
    private @Nullable ScheduledFuture<?> idleTimer;

    void bind(@Nullable ResponseSink s) {
      this.sink = s;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      ResponseSink s = sink;
      if (s != null && msg instanceof HttpObject h) {
        s.response(ctx.channel(), h);
      } else {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
      ResponseSink s = sink;
      if (s != null) {
        s.readComplete(ctx.channel());
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      EndpointPool p = pool;
      if (p != null) {
        p.closed(ctx.channel(), this);
      }
      ResponseSink s = sink;
      sink = null;
      if (s != null) {
        s.closed(ctx.channel());
      }
    }

    @Override
    public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
      if (evt instanceof ChannelInputShutdownEvent) {
        ctx.close(); // the server ended its side: this exchange connection is finished
        return;
      }
      ctx.fireUserEventTriggered(evt);
    }

    @Override
    public void channelWritabilityChanged(ChannelHandlerContext ctx) {
      ResponseSink s = sink;
      if (s != null) {
        s.writable(ctx.channel(), ctx.channel().isWritable());
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      FatalErrors.check(cause);
      ctx.close();
    }
  }

  /**
   * The connections to one endpoint from one loop. Only its loop touches it; the idle timers run
   * there too (a connection's loop is the pool's loop).
   *
   * <p>An HTTP/1.1 connection's idle timer is not a task per park: parking notes the time, and the
   * connection's one timer, when it runs, closes the connection if it has been parked for the whole
   * timeout, or schedules itself for the rest (parked again since), or lapses (in use; the next
   * park starts it again). A kept-alive connection that serves request after request so schedules
   * about once per timeout instead of once per request (a task allocation and two timer-queue
   * operations each).
   */
  static final class EndpointPool {
    final Duration idleTimeout;
    final ArrayDeque<Channel> idle = new ArrayDeque<>();
    @Nullable Channel h2Connection;
    @Nullable List<Promise<Channel>> h2Waiting;
    int h2Streams;
    private @Nullable ScheduledFuture<?> h2IdleTimer;

    EndpointPool(Duration idleTimeout) {
      this.idleTimeout = idleTimeout;
    }

    /** Parks {@code ch} (whose exchange handler is {@code ex}) as idle from now. */
    void park(Channel ch, Exchange ex) {
      idle.addLast(ch);
      ex.parked = true;
      ex.parkedAt = ch.eventLoop().ticker().nanoTime();
      if (ex.idleTimer == null) {
        scheduleIdleCheck(ch, ex, idleTimeout.toNanos());
      }
    }

    private void scheduleIdleCheck(Channel ch, Exchange ex, long delayNanos) {
      ex.idleTimer =
          ch.eventLoop().schedule(() -> idleCheck(ch, ex), delayNanos, TimeUnit.NANOSECONDS);
    }

    private void idleCheck(Channel ch, Exchange ex) {
      ex.idleTimer = null;
      if (!ex.parked) {
        return; // in use: its next park starts the timer again
      }
      long idleFor = ch.eventLoop().ticker().nanoTime() - ex.parkedAt;
      long timeout = idleTimeout.toNanos();
      if (idleFor < timeout) {
        scheduleIdleCheck(ch, ex, timeout - idleFor); // taken and parked again meanwhile
        return;
      }
      ex.parked = false;
      if (idle.remove(ch)) {
        ch.close();
      }
    }

    /** The most recently parked idle connection still open; else null. */
    @Nullable Channel take() {
      Channel ch;
      while ((ch = idle.pollLast()) != null) {
        Exchange ex = ch.pipeline().get(Exchange.class);
        if (ex != null) {
          ex.parked = false; // its timer, when it runs, lapses
        }
        if (ch.isActive()) {
          return ch;
        }
        cancelTimer(ex);
      }
      return null;
    }

    /** {@code ch} closed: it is no longer idle here, and its timer goes. */
    void closed(Channel ch, Exchange ex) {
      if (ex.parked) {
        ex.parked = false;
        idle.remove(ch);
      }
      cancelTimer(ex);
    }

    private static void cancelTimer(@Nullable Exchange ex) {
      if (ex == null) {
        return;
      }
      ScheduledFuture<?> t = ex.idleTimer;
      if (t != null) {
        ex.idleTimer = null;
        t.cancel(false);
      }
    }

    int idleCount() {
      return idle.size();
    }

    /** A stream was opened on the HTTP/2 connection: it is not idle. */
    void streamOpened() {
      h2Streams++;
      ScheduledFuture<?> t = h2IdleTimer;
      h2IdleTimer = null;
      if (t != null) {
        t.cancel(false);
      }
    }

    /** A stream of {@code conn} closed; the last one starts the connection's idle timer. */
    void streamClosed(Channel conn) {
      if (conn != h2Connection || --h2Streams > 0 || h2IdleTimer != null) {
        return; // a stream of an older connection, or others still open
      }
      h2IdleTimer =
          conn.eventLoop()
              .schedule(
                  () -> {
                    h2IdleTimer = null;
                    if (h2Connection == conn && h2Streams == 0) {
                      h2Connection = null;
                      conn.close(); // no stream open: a plain close sends GOAWAY first
                    }
                  },
                  idleTimeout.toNanos(),
                  TimeUnit.NANOSECONDS);
    }

    /** The HTTP/2 connection {@code conn} closed: forget it and its idle timer. */
    void h2Closed(Channel conn) {
      if (h2Connection != conn) {
        return;
      }
      h2Connection = null;
      h2Streams = 0;
      ScheduledFuture<?> t = h2IdleTimer;
      h2IdleTimer = null;
      if (t != null) {
        t.cancel(false);
      }
    }
  }

  /**
   * Drops every pool of connections made in {@code from} (a pod that is no longer enrolled): its
   * idle connections close, an HTTP/2 connection closes once its open streams end (a plain close
   * sends GOAWAY), and the pool entries go, so pods coming and going do not grow the maps. A
   * connection in use at that moment goes back to the dropped pool when its exchange ends, where
   * its idle timer closes it. Runs on each pool's own loop; returns when every loop has done it (or
   * 5 s have passed).
   */
  public void release(NetworkNamespace from) {
    List<io.netty.util.concurrent.Future<?>> done = new ArrayList<>();
    byLoop.forEach(
        (loop, pools) -> {
          if (loop.isShuttingDown()) {
            return;
          }
          done.add(
              loop.submit(
                  () ->
                      pools
                          .entrySet()
                          .removeIf(
                              e -> {
                                if (e.getKey().from() != from) {
                                  return false;
                                }
                                EndpointPool pool = e.getValue();
                                for (Channel ch; (ch = pool.take()) != null; ) {
                                  ch.close();
                                }
                                Channel h2 = pool.h2Connection;
                                if (h2 != null && pool.h2Streams == 0) {
                                  h2.close();
                                }
                                return true;
                              })));
        });
    for (io.netty.util.concurrent.Future<?> f : done) {
      f.awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
  }

  /** How many endpoint pools exist now, over every loop (tests of pod churn). */
  public int poolCount() {
    int n = 0;
    for (Map.Entry<EventExecutor, Map<Key, EndpointPool>> e : byLoop.entrySet()) {
      if (e.getKey().isShuttingDown()) {
        continue;
      }
      Map<Key, EndpointPool> pools = e.getValue();
      // Read on the pool's loop: the map is only ever touched there.
      io.netty.util.concurrent.Future<Integer> size = e.getKey().submit(pools::size);
      if (size.awaitUninterruptibly(5, TimeUnit.SECONDS) && size.isSuccess()) {
        n += size.getNow();
      }
    }
    return n;
  }

  /** An exchange handler that parks its channel in {@code pool} when released (tests). */
  static Exchange exchangeOf(EndpointPool pool) {
    Exchange ex = new Exchange();
    ex.pool = pool;
    return ex;
  }

  /**
   * An exchange channel along {@code path} ({@code h2}: a stream on a shared HTTP/2 connection);
   * completes on {@code downstream}'s event loop, which must be the caller's.
   */
  public Future<Channel> acquire(
      Channel downstream, UpstreamPath path, boolean h2, Duration idleTimeout) {
    EventExecutor loop = downstream.eventLoop();
    Map<Key, EndpointPool> pools =
        byLoop.computeIfAbsent(
            loop,
            l -> {
              l.terminationFuture().addListener(f -> byLoop.remove(l));
              return new HashMap<>();
            });
    EndpointPool pool = pools.computeIfAbsent(Key.of(path, h2), k -> new EndpointPool(idleTimeout));
    Promise<Channel> result = loop.newPromise();
    if (h2) {
      acquireStream(downstream, path, pool, result);
      return result;
    }
    Channel ch = pool.take();
    if (ch != null) {
      result.setSuccess(ch);
      return result;
    }
    dialer
        .dial(downstream, path)
        .addListener(
            (Future<Channel> f) -> {
              if (!f.isSuccess()) {
                result.setFailure(f.cause());
                return;
              }
              Channel c = f.getNow();
              // Upstream sockets allow half-closure (the L4 relay needs it), but an HTTP server
              // that shuts its side is done with the connection: without this a pooled
              // connection stays "active" after the server's FIN (nginx after keepalive_requests,
              // in its lingering close) and the next request sent on it is never answered.
              c.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
              Exchange ex = new Exchange();
              ex.pool = pool;
              c.pipeline().addLast(new HttpClientCodec(), ex);
              c.config().setAutoRead(true);
              result.setSuccess(c);
            });
    return result;
  }

  private void acquireStream(
      Channel downstream, UpstreamPath path, EndpointPool pool, Promise<Channel> result) {
    Channel conn = pool.h2Connection;
    if (conn != null && conn.isActive()) {
      openStream(conn, pool, result);
      return;
    }
    List<Promise<Channel>> waiting = pool.h2Waiting;
    if (waiting != null) {
      waiting.add(result);
      return;
    }
    List<Promise<Channel>> w = new ArrayList<>();
    w.add(result);
    pool.h2Waiting = w;
    pool.h2Connection = null;
    dialer
        .dial(downstream, path)
        .addListener(
            (Future<Channel> f) -> {
              pool.h2Waiting = null;
              if (!f.isSuccess()) {
                w.forEach(p -> p.tryFailure(f.cause()));
                return;
              }
              Channel c = f.getNow();
              c.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
              c.pipeline()
                  .addLast(
                      Http2FrameCodecBuilder.forClient().build(),
                      // Streams the server opens (push) are not accepted: nothing to handle.
                      new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()));
              c.config().setAutoRead(true);
              pool.h2Connection = c;
              pool.h2Streams = 0;
              c.closeFuture().addListener(cf -> pool.h2Closed(c));
              w.forEach(p -> openStream(c, pool, p));
            });
  }

  private static void openStream(Channel conn, EndpointPool pool, Promise<Channel> result) {
    pool.streamOpened(); // counted from here, so no idle timer closes conn while it opens
    new Http2StreamChannelBootstrap(conn)
        .handler(
            new ChannelInitializer<Http2StreamChannel>() {
              @Override
              protected void initChannel(Http2StreamChannel ch) {
                ch.pipeline().addLast(STREAM_CONVERSION, new Exchange());
              }
            })
        .open()
        .addListener(
            f -> {
              if (f.isSuccess()) {
                Channel stream = (Channel) f.getNow();
                stream.closeFuture().addListener(cf -> pool.streamClosed(conn));
                result.trySuccess(stream);
              } else {
                pool.streamClosed(conn);
                result.tryFailure(f.cause());
              }
            });
  }

  /**
   * Ends an exchange: an HTTP/1.1 connection whose exchange completed cleanly goes back to its pool
   * (at most {@value #MAX_IDLE_PER_ENDPOINT} idle per endpoint), anything else is closed (an HTTP/2
   * stream always: streams are single use).
   */
  public static void release(Channel exchange, boolean reusable) {
    Exchange ex = exchange.pipeline().get(Exchange.class);
    if (ex != null) {
      ex.bind(null);
    }
    EndpointPool pool = ex == null ? null : ex.pool;
    if (reusable
        && pool != null
        && exchange.isActive()
        && pool.idle.size() < MAX_IDLE_PER_ENDPOINT) {
      exchange.config().setAutoRead(true); // notice the server closing an idle connection
      pool.park(exchange, ex);
      return;
    }
    exchange.close();
  }

  /** Binds {@code sink} to receive the exchange's response. */
  public static void bind(Channel exchange, ResponseSink sink) {
    Exchange ex = exchange.pipeline().get(Exchange.class);
    if (ex == null) {
      throw new IllegalStateException("not an exchange channel: " + exchange);
    }
    ex.bind(sink);
  }
}
