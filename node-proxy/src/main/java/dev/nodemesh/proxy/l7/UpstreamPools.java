package dev.nodemesh.proxy.l7;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.config.Workload;
import dev.nodemesh.proxy.l4.Upstream;
import dev.nodemesh.proxy.tunnel.StreamBytes;
import dev.nodemesh.proxy.tunnel.Tunnel;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
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
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jspecify.annotations.Nullable;

/**
 * Upstream HTTP connections, pooled per event loop and per (endpoint address, namespace the socket
 * is made in, protocol), so a pool is only ever touched by its own loop: no locks. HTTP/1.1
 * connections are kept alive and reused one exchange at a time; HTTP/2 shares one connection per
 * endpoint and opens a stream per exchange. Sockets are made by {@link Upstream#connect} (the pod's
 * namespace, the proxy mark), exactly as the L4 path makes them; to an endpoint on another node the
 * "connection" is instead a CONNECT stream in the source workload's pooled HBONE tunnel (mutual
 * TLS, the receiving node's policy), pooled per source pod like any other.
 *
 * <p>An exchange is a channel that takes {@link HttpObject}s (request) and yields them (response)
 * through its {@link Exchange} handler. Limits: no idle timeout and no cap on HTTP/2 concurrent
 * streams yet; pools of a removed pod stay until their connections close.
 */
final class UpstreamPools {
  private static final int MAX_IDLE_PER_ENDPOINT = 64;
  private static final ConcurrentHashMap<EventExecutor, Map<Key, EndpointPool>> BY_LOOP =
      new ConcurrentHashMap<>();

  private UpstreamPools() {}

  private record Key(
      InetSocketAddress address, NetworkNamespace from, boolean h2, boolean tunnelled) {}

  /**
   * An endpoint on another node, reached through an HBONE CONNECT stream presenting {@code
   * source}'s workload certificate instead of a socket; the receiving node checks policy for that
   * stream as for any other.
   */
  record Via(EnrolledPod source, Workload destination) {}

  /** Where an exchange delivers its response; called on the exchange's event loop. */
  interface ResponseSink {
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
        p.idle.remove(ctx.channel());
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
      ctx.close();
    }
  }

  private static final class EndpointPool {
    final ArrayDeque<Channel> idle = new ArrayDeque<>();
    @Nullable Channel h2Connection;
    @Nullable List<Promise<Channel>> h2Waiting;
  }

  /**
   * An exchange channel to {@code to}, made from {@code from}; completes on {@code downstream}'s
   * event loop, which must be the caller's.
   */
  static Future<Channel> acquire(
      DataPlane plane,
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      boolean h2,
      @Nullable Via via) {
    EventExecutor loop = downstream.eventLoop();
    Map<Key, EndpointPool> pools =
        BY_LOOP.computeIfAbsent(
            loop,
            l -> {
              l.terminationFuture().addListener(f -> BY_LOOP.remove(l));
              return new HashMap<>();
            });
    EndpointPool pool =
        pools.computeIfAbsent(new Key(to, from, h2, via != null), k -> new EndpointPool());
    Promise<Channel> result = loop.newPromise();
    if (h2) {
      acquireStream(plane, downstream, from, to, via, pool, result);
      return result;
    }
    Channel ch;
    while ((ch = pool.idle.pollLast()) != null) {
      if (ch.isActive()) {
        result.setSuccess(ch);
        return result;
      }
    }
    dial(plane, downstream, from, to, via)
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

  /**
   * The transport of a new upstream connection: a socket made in {@code from} (the proxy mark), or
   * with {@code via}, a CONNECT stream in the pooled HBONE tunnel adapted to carry bytes ({@link
   * StreamBytes}). Auto-read is off until the caller has added its handlers.
   */
  private static Future<Channel> dial(
      DataPlane plane,
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      @Nullable Via via) {
    Promise<Channel> p = downstream.eventLoop().newPromise();
    Tunnel tunnel = plane.tunnel();
    if (via != null) {
      if (tunnel == null) {
        return p.setFailure(new IllegalStateException("no tunnel for " + to));
      }
      tunnel
          .open(plane, downstream, via.source(), via.destination(), to)
          .addListener(
              (Future<Http2StreamChannel> f) -> {
                if (!f.isSuccess()) {
                  p.setFailure(f.cause());
                  return;
                }
                Channel stream = StreamBytes.install(f.getNow());
                if (!p.trySuccess(stream)) {
                  stream.close();
                }
              });
      return p;
    }
    Upstream.connect(plane, downstream, from, to)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess()) {
                    if (f.channel() != downstream) {
                      f.channel().close();
                    }
                    p.setFailure(f.cause());
                    return;
                  }
                  p.setSuccess(f.channel());
                });
    return p;
  }

  private static void acquireStream(
      DataPlane plane,
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      @Nullable Via via,
      EndpointPool pool,
      Promise<Channel> result) {
    Channel conn = pool.h2Connection;
    if (conn != null && conn.isActive()) {
      openStream(conn, result);
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
    dial(plane, downstream, from, to, via)
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
              c.closeFuture()
                  .addListener(
                      cf -> {
                        if (pool.h2Connection == c) {
                          pool.h2Connection = null;
                        }
                      });
              w.forEach(p -> openStream(c, p));
            });
  }

  private static void openStream(Channel conn, Promise<Channel> result) {
    new Http2StreamChannelBootstrap(conn)
        .handler(
            new ChannelInitializer<Http2StreamChannel>() {
              @Override
              protected void initChannel(Http2StreamChannel ch) {
                ch.pipeline().addLast(new Http2StreamFrameToHttpObjectCodec(false), new Exchange());
              }
            })
        .open()
        .addListener(
            f -> {
              if (f.isSuccess()) {
                result.trySuccess((Channel) f.getNow());
              } else {
                result.tryFailure(f.cause());
              }
            });
  }

  /**
   * Ends an exchange: an HTTP/1.1 connection whose exchange completed cleanly goes back to its pool
   * (at most {@value #MAX_IDLE_PER_ENDPOINT} idle per endpoint), anything else is closed (an HTTP/2
   * stream always: streams are single use).
   */
  static void release(Channel exchange, boolean reusable) {
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
      pool.idle.addLast(exchange);
      return;
    }
    exchange.close();
  }

  /** Binds {@code sink} to receive the exchange's response. */
  static void bind(Channel exchange, ResponseSink sink) {
    Exchange ex = exchange.pipeline().get(Exchange.class);
    if (ex == null) {
      throw new IllegalStateException("not an exchange channel: " + exchange);
    }
    ex.bind(sink);
  }
}
