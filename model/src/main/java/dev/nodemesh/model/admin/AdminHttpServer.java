package dev.nodemesh.model.admin;

import com.sun.net.httpserver.HttpHandler;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioChannelOption;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http.QueryStringDecoder;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.net.StandardSocketOptions;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin HTTP server both daemons run (the node proxy's {@code AdminServer} on 15020, the
 * control plane's {@code HealthServer} on 15014): a table of paths, each answered either on the
 * server's own event loop (probes: cheap, never blocked by anything a client does) or on a small
 * bounded worker pool (scrapes, dumps, log levels: may take a while), with the limits that keep one
 * client from holding it.
 *
 * <p>Its own threads, never a data-plane event loop: one NIO event loop ({@code <name>-io}) reads
 * requests without blocking; {@value #WORKERS} workers ({@code <name>}) with {@value #QUEUE}
 * waiting, past which a pooled path gets 503 at once. Each connection must deliver a complete
 * request within the request timeout ({@link #REQUEST_TIMEOUT} by default) of connecting or of its
 * previous answer (header and idle timeout in one, against slowloris), a request head is at most
 * {@value #MAX_HEAD} bytes and a body {@value #MAX_BODY}, at most {@value #MAX_PIPELINED} requests
 * are read ahead of their answer, and at most {@value #MAX_CONNECTIONS} connections are open (a new
 * one past that is closed at once).
 *
 * <p>When the address is neither loopback nor the wildcard, the same paths also answer on 127.0.0.1
 * at the same port: the manifests bind the admin to the pod (or node) IP, but {@code kubectl
 * port-forward} and {@code kubectl exec ... curl 127.0.0.1} arrive on loopback, and paths marked
 * loopback-only (and {@link LoggingEndpoint}'s level changes) answer loopback peers only. The peer
 * is the TCP peer address, never a header. Limits: HTTP/1.1 only, no TLS, no authentication (hence
 * the loopback rule).
 */
public final class AdminHttpServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AdminHttpServer.class);

  /** A complete request must arrive within this of connecting or of the previous answer. */
  public static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(10);

  /**
   * Names the answering process on every response: during an upgrade two node proxies share the
   * admin port (SO_REUSEPORT), and {@code nodemesh local upgrade-proxy} waits for a 200 from the
   * new one.
   */
  public static final String PID_HEADER = "x-nodemesh-pid";

  private static final String PID = Long.toString(ProcessHandle.current().pid());

  public static final int MAX_CONNECTIONS = 256;
  public static final int WORKERS = 2;
  public static final int QUEUE = 32;
  static final int MAX_HEAD = 8192;
  static final int MAX_BODY = 64 * 1024;
  static final int MAX_PIPELINED = 8;

  /** One request, as a path's handler sees it (the body is not passed: no path reads one). */
  public record Request(String method, URI uri, InetSocketAddress peer, InetSocketAddress local) {}

  /** One answer: status, content type and body. */
  public record Answer(int status, String type, String body) {
    public static Answer text(int status, String body) {
      return new Answer(status, "text/plain; charset=utf-8", body);
    }
  }

  /** How one path is answered. */
  public record Route(
      boolean onLoop, @Nullable String loopbackOnly, Function<Request, Answer> handler) {
    /** Answered on the event loop: for probes, which must be cheap and never block. */
    public static Route onLoop(Function<Request, Answer> handler) {
      return new Route(true, null, handler);
    }

    /** Answered on the worker pool (503 when it is full). */
    public static Route pooled(Function<Request, Answer> handler) {
      return new Route(false, null, handler);
    }

    /** A JDK {@link HttpHandler} (such as {@link LoggingEndpoint}) on the worker pool. */
    public static Route pooledJdk(HttpHandler handler) {
      return new Route(false, null, r -> ExchangeAdapter.run(handler, r));
    }

    /**
     * On the worker pool, for loopback peers only; others get 403 on the loop, naming {@code what}
     * ("the config dump") and their address.
     */
    public static Route pooledForLoopback(String what, Function<Request, Answer> handler) {
      return new Route(false, what, handler);
    }
  }

  private final List<Channel> listeners;
  private final EventLoopGroup loop;
  private final ExecutorService workers;

  private AdminHttpServer(List<Channel> listeners, EventLoopGroup loop, ExecutorService workers) {
    this.listeners = listeners;
    this.loop = loop;
    this.workers = workers;
  }

  /** With loopback peers as the privileged ones and the default request timeout. */
  public static AdminHttpServer start(
      InetSocketAddress address, String threadName, Map<String, Route> routes) throws IOException {
    return start(address, threadName, routes, InetAddress::isLoopbackAddress, REQUEST_TIMEOUT);
  }

  /**
   * Binds and starts. The listening sockets are opened on the calling thread, so a caller inside a
   * network namespace binds there.
   *
   * @param threadName the workers' name; the event loop's is this with {@code -io}
   * @param routes path (exact, without the query) to how it is answered; others get 404
   * @param privileged which peers the loopback-only paths answer (tests widen or narrow it)
   */
  public static AdminHttpServer start(
      InetSocketAddress address,
      String threadName,
      Map<String, Route> routes,
      Predicate<InetAddress> privileged,
      Duration requestTimeout)
      throws IOException {
    EventLoopGroup loop =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory(threadName + "-io", true), NioIoHandler.newFactory());
    ThreadPoolExecutor workers =
        new ThreadPoolExecutor(
            WORKERS,
            WORKERS,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(QUEUE),
            r -> {
              Thread t = new Thread(r, threadName);
              t.setDaemon(true);
              return t;
            });
    workers.allowCoreThreadTimeOut(true);
    Map<String, Route> table = new LinkedHashMap<>(routes);
    AtomicInteger open = new AtomicInteger();
    ServerBootstrap b =
        new ServerBootstrap()
            .group(loop)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 64)
            // An upgrade runs the new proxy beside the old one with the same address: both listen,
            // the kernel spreads connections over them, and each answer names its process (PID).
            .option(NioChannelOption.of(StandardSocketOptions.SO_REUSEPORT), true)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    if (open.incrementAndGet() > MAX_CONNECTIONS) {
                      open.decrementAndGet();
                      ch.close();
                      return;
                    }
                    ch.closeFuture().addListener(f -> open.decrementAndGet());
                    ch.pipeline()
                        .addLast(new HttpServerCodec(4096, MAX_HEAD, 8192))
                        .addLast(new HttpObjectAggregator(MAX_BODY))
                        .addLast(new Handler(table, privileged, workers, requestTimeout));
                  }
                });
    List<Channel> listeners = new ArrayList<>();
    try {
      listeners.add(bind(b, address));
      InetAddress ip = address.getAddress();
      if (ip != null && !ip.isLoopbackAddress() && !ip.isAnyLocalAddress()) {
        InetSocketAddress loopback =
            new InetSocketAddress(
                InetAddress.getLoopbackAddress(),
                ((InetSocketAddress) listeners.get(0).localAddress()).getPort());
        try {
          listeners.add(bind(b, loopback));
        } catch (IOException e) {
          log.warn(
              "admin: {} is taken, serving on {} only (loopback-only paths and log level changes"
                  + " need a loopback peer)",
              loopback,
              listeners.get(0).localAddress());
        }
      }
    } catch (IOException | RuntimeException e) {
      listeners.forEach(Channel::close);
      loop.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      workers.shutdownNow();
      throw e;
    }
    return new AdminHttpServer(listeners, loop, workers);
  }

  private static Channel bind(ServerBootstrap b, SocketAddress address) throws IOException {
    // bind() opens the socket on this thread (NioServerSocketChannel's constructor) and binds it
    // on the loop.
    ChannelFuture f = b.bind(address).awaitUninterruptibly();
    if (!f.isSuccess()) {
      Throwable cause = f.cause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("admin: cannot listen on " + address + ": " + cause, cause);
    }
    return f.channel();
  }

  /** The address of the first listener (the configured one, with its port when it was 0). */
  public InetSocketAddress address() {
    return (InetSocketAddress) listeners.get(0).localAddress();
  }

  @Override
  public void close() {
    listeners.forEach(c -> c.close().awaitUninterruptibly());
    loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    workers.shutdownNow();
  }

  /** One per connection: the request deadline, routing, and answering in order. */
  private static final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
    private final Map<String, Route> routes;
    private final Predicate<InetAddress> privileged;
    private final ExecutorService workers;
    private final Duration requestTimeout;
    private @Nullable ScheduledFuture<?> deadline;
    private boolean busy;
    private final ArrayDeque<FullHttpRequest> waiting = new ArrayDeque<>();

    Handler(
        Map<String, Route> routes,
        Predicate<InetAddress> privileged,
        ExecutorService workers,
        Duration requestTimeout) {
      this.routes = routes;
      this.privileged = privileged;
      this.workers = workers;
      this.requestTimeout = requestTimeout;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) throws Exception {
      arm(ctx);
      super.channelActive(ctx);
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) throws Exception {
      disarm();
      for (FullHttpRequest r; (r = waiting.poll()) != null; ) {
        r.release();
      }
      super.channelInactive(ctx);
    }

    private void arm(ChannelHandlerContext ctx) {
      disarm();
      deadline =
          ctx.executor()
              .schedule(
                  () -> {
                    ctx.close();
                  },
                  requestTimeout.toNanos(),
                  TimeUnit.NANOSECONDS);
    }

    private void disarm() {
      ScheduledFuture<?> d = deadline;
      if (d != null) {
        d.cancel(false);
        deadline = null;
      }
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
      disarm(); // until this request is answered
      if (busy) {
        // Pipelined: answered in order, after the one in flight; reading pauses meanwhile.
        if (waiting.size() >= MAX_PIPELINED) {
          ctx.close();
          return;
        }
        waiting.add(req.retain());
        return;
      }
      busy = true;
      ctx.channel().config().setAutoRead(false);
      process(ctx, req);
    }

    private void process(ChannelHandlerContext ctx, FullHttpRequest req) {
      boolean keepAlive = HttpUtil.isKeepAlive(req);
      if (!req.decoderResult().isSuccess()) {
        // Too long a head, a malformed line: answer and close.
        answer(ctx, false, Answer.text(400, "bad request\n"));
        return;
      }
      URI uri;
      String path;
      try {
        uri = URI.create(req.uri());
        path = new QueryStringDecoder(req.uri()).path();
      } catch (IllegalArgumentException e) {
        answer(ctx, false, Answer.text(400, "bad request URI\n"));
        return;
      }
      InetSocketAddress peer = (InetSocketAddress) ctx.channel().remoteAddress();
      Request request =
          new Request(
              req.method().name(), uri, peer, (InetSocketAddress) ctx.channel().localAddress());
      Route route = routes.get(path);
      if (route == null) {
        answer(ctx, keepAlive, Answer.text(404, "not found\n"));
      } else if (route.loopbackOnly() != null && !privileged.test(peer.getAddress())) {
        log.warn("admin: refused {} to {}", path, peer.getAddress().getHostAddress());
        answer(
            ctx,
            keepAlive,
            Answer.text(
                403,
                route.loopbackOnly()
                    + " is served to loopback only (kubectl port-forward, or kubectl exec and curl"
                    + " 127.0.0.1); this request came from "
                    + peer.getAddress().getHostAddress()
                    + "\n"));
      } else if (route.onLoop()) {
        answer(ctx, keepAlive, run(route, request));
      } else {
        offload(ctx, keepAlive, () -> run(route, request));
      }
    }

    private static Answer run(Route route, Request request) {
      try {
        return route.handler().apply(request);
      } catch (RuntimeException e) {
        log.warn("admin: {} failed", request.uri().getRawPath(), e);
        return Answer.text(500, "failed: " + e + "\n");
      }
    }

    /** Runs {@code work} on the pool and answers on the loop; 503 when the pool is full. */
    private void offload(ChannelHandlerContext ctx, boolean keepAlive, Supplier<Answer> work) {
      try {
        workers.execute(
            () -> {
              Answer done = work.get();
              ctx.executor().execute(() -> answer(ctx, keepAlive, done));
            });
      } catch (RejectedExecutionException e) {
        answer(ctx, false, Answer.text(503, "admin busy, try again\n"));
      }
    }

    private void answer(ChannelHandlerContext ctx, boolean keepAlive, Answer a) {
      if (!ctx.channel().isActive()) {
        return;
      }
      FullHttpResponse r =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              HttpResponseStatus.valueOf(a.status()),
              Unpooled.wrappedBuffer(a.body().getBytes(StandardCharsets.UTF_8)));
      r.headers().set(HttpHeaderNames.CONTENT_TYPE, a.type());
      r.headers().set(PID_HEADER, PID);
      HttpUtil.setContentLength(r, r.content().readableBytes());
      if (keepAlive) {
        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.KEEP_ALIVE);
        ctx.writeAndFlush(r).addListener(ChannelFutureListener.CLOSE_ON_FAILURE);
        FullHttpRequest next = waiting.poll();
        if (next != null) {
          try {
            process(ctx, next);
          } finally {
            next.release();
          }
          return;
        }
        busy = false;
        ctx.channel().config().setAutoRead(true);
        arm(ctx);
      } else {
        r.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
        ctx.writeAndFlush(r).addListener(ChannelFutureListener.CLOSE);
      }
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      log.debug("admin: connection from {} failed: {}", ctx.channel().remoteAddress(), cause);
      ctx.close();
    }
  }
}
