package dev.nodemesh.proxy.admin;

import dev.nodemesh.model.admin.AdminListeners;
import dev.nodemesh.model.admin.LoggingEndpoint;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
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
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import java.util.function.Supplier;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The admin endpoint (15020 by default, localhost): {@code /metrics} for Prometheus, {@code
 * /healthz} (503 with the reason while an event loop lags or has stopped), {@code /ready} (see
 * {@link Readiness}; 503 with the reason when not), {@code /config_dump} (JSON, see {@link
 * ConfigDump}) and {@code /logging} ({@link LoggingEndpoint}, shared with the control plane). When
 * the address is neither loopback nor the wildcard, the same paths also answer on 127.0.0.1, as
 * {@link AdminListeners} does for the control plane.
 *
 * <p>Its own threads, never a data-plane event loop, and nothing a client does can hold them: one
 * event loop ({@code nodemesh-admin-io}) reads requests without blocking and answers {@code
 * /healthz} and {@code /ready} itself, so a slow client (slowloris) or a slow scrape never delays a
 * probe; {@code /metrics}, {@code /config_dump} and {@code /logging}, which may take a while, run
 * on a small bounded pool ({@code nodemesh-admin}, {@value #WORKERS} threads, {@value #QUEUE}
 * waiting; past that 503). Each connection must deliver a complete request within {@link
 * #REQUEST_TIMEOUT} of connecting or of its previous answer (header and idle timeout in one), a
 * request head is at most 8 KiB and a body 64 KiB, and at most {@value #MAX_CONNECTIONS}
 * connections are open; past that a new one is closed at once.
 *
 * <p>{@code /config_dump} (every workload, policy and route of the node) and level changes answer
 * loopback peers only (127.0.0.0/8, ::1: {@code kubectl port-forward}, {@code kubectl exec ... curl
 * 127.0.0.1}); other peers get 403. The peer is the TCP peer address, never a header.
 */
public final class AdminServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(AdminServer.class);

  /** A complete request must arrive within this of connecting or of the previous answer. */
  public static final Duration REQUEST_TIMEOUT = Duration.ofSeconds(10);

  public static final int MAX_CONNECTIONS = 256;
  static final int WORKERS = 2;
  static final int QUEUE = 32;
  private static final int MAX_HEAD = 8192;
  private static final int MAX_BODY = 64 * 1024;

  /**
   * Names the answering process on every response: during an upgrade two proxies share the admin
   * port (SO_REUSEPORT), and {@code nodemesh local upgrade-proxy} waits for a 200 from the new one.
   */
  public static final String PID_HEADER = "x-nodemesh-pid";

  private static final String PID = Long.toString(ProcessHandle.current().pid());

  /** Requests read ahead of their answer on one connection (HTTP/1.1 pipelining). */
  private static final int MAX_PIPELINED = 8;

  private final List<Channel> listeners;
  private final EventLoopGroup loop;
  private final ExecutorService workers;

  private AdminServer(List<Channel> listeners, EventLoopGroup loop, ExecutorService workers) {
    this.listeners = listeners;
    this.loop = loop;
    this.workers = workers;
  }

  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump)
      throws IOException {
    return start(address, metrics, notReadyReason, () -> null, configDump);
  }

  /**
   * As above, with {@code /healthz} answering 503 and the reason while {@code unhealthyReason}
   * gives one (an event loop that lags or has stopped, see {@code liveness.LoopWatchdog}).
   */
  public static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<@Nullable String> unhealthyReason,
      Supplier<String> configDump)
      throws IOException {
    return start(
        address,
        metrics,
        notReadyReason,
        unhealthyReason,
        configDump,
        InetAddress::isLoopbackAddress,
        REQUEST_TIMEOUT);
  }

  /** With the rule for loopback-only paths and the request timeout; {@code /healthz} always ok. */
  static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<String> configDump,
      Predicate<InetAddress> privileged,
      Duration requestTimeout)
      throws IOException {
    return start(
        address, metrics, notReadyReason, () -> null, configDump, privileged, requestTimeout);
  }

  /**
   * With the rule for loopback-only paths and the request timeout (tests). The listening sockets
   * are opened on the calling thread, so a caller inside a network namespace binds there.
   */
  static AdminServer start(
      InetSocketAddress address,
      Supplier<String> metrics,
      Supplier<@Nullable String> notReadyReason,
      Supplier<@Nullable String> unhealthyReason,
      Supplier<String> configDump,
      Predicate<InetAddress> privileged,
      Duration requestTimeout)
      throws IOException {
    EventLoopGroup loop =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("nodemesh-admin-io", true), NioIoHandler.newFactory());
    ThreadPoolExecutor workers =
        new ThreadPoolExecutor(
            WORKERS,
            WORKERS,
            30,
            TimeUnit.SECONDS,
            new ArrayBlockingQueue<>(QUEUE),
            r -> {
              Thread t = new Thread(r, "nodemesh-admin");
              t.setDaemon(true);
              return t;
            });
    workers.allowCoreThreadTimeOut(true);
    LoggingEndpoint logging = new LoggingEndpoint(privileged);
    AtomicInteger open = new AtomicInteger();
    ServerBootstrap b =
        new ServerBootstrap()
            .group(loop)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_BACKLOG, 64)
            // An upgrade runs the new proxy beside the old one with the same --admin: both listen,
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
                        .addLast(
                            new Handler(
                                metrics,
                                notReadyReason,
                                unhealthyReason,
                                configDump,
                                logging,
                                privileged,
                                workers,
                                requestTimeout));
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
              "admin: {} is taken, serving on {} only (config dumps and log level changes need a"
                  + " loopback peer)",
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
    return new AdminServer(listeners, loop, workers);
  }

  private static Channel bind(ServerBootstrap b, SocketAddress address) throws IOException {
    // bind() opens the socket on this thread (NioServerSocketChannel's constructor) and binds it
    // on the loop.
    io.netty.channel.ChannelFuture f = b.bind(address).awaitUninterruptibly();
    if (!f.isSuccess()) {
      Throwable cause = f.cause();
      if (cause instanceof IOException io) {
        throw io;
      }
      throw new IOException("admin: cannot listen on " + address + ": " + cause, cause);
    }
    return f.channel();
  }

  public InetSocketAddress address() {
    return (InetSocketAddress) listeners.get(0).localAddress();
  }

  @Override
  public void close() {
    listeners.forEach(c -> c.close().awaitUninterruptibly());
    loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    workers.shutdownNow();
  }

  /** One per connection: the request deadline, routing, and answering. */
  private static final class Handler extends SimpleChannelInboundHandler<FullHttpRequest> {
    private final Supplier<String> metrics;
    private final Supplier<@Nullable String> notReadyReason;
    private final Supplier<@Nullable String> unhealthyReason;
    private final Supplier<String> configDump;
    private final LoggingEndpoint logging;
    private final Predicate<InetAddress> privileged;
    private final ExecutorService workers;
    private final Duration requestTimeout;
    private @Nullable ScheduledFuture<?> deadline;
    private boolean busy;
    private final java.util.ArrayDeque<FullHttpRequest> waiting = new java.util.ArrayDeque<>();

    Handler(
        Supplier<String> metrics,
        Supplier<@Nullable String> notReadyReason,
        Supplier<@Nullable String> unhealthyReason,
        Supplier<String> configDump,
        LoggingEndpoint logging,
        Predicate<InetAddress> privileged,
        ExecutorService workers,
        Duration requestTimeout) {
      this.metrics = metrics;
      this.notReadyReason = notReadyReason;
      this.unhealthyReason = unhealthyReason;
      this.configDump = configDump;
      this.logging = logging;
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
        answer(ctx, false, new Answer(400, "text/plain", "bad request\n"));
        return;
      }
      String path = new QueryStringDecoder(req.uri()).path();
      String method = req.method().name();
      URI uri;
      try {
        uri = URI.create(req.uri());
      } catch (IllegalArgumentException e) {
        answer(ctx, false, new Answer(400, "text/plain", "bad request URI\n"));
        return;
      }
      InetSocketAddress peer = (InetSocketAddress) ctx.channel().remoteAddress();
      switch (path) {
        case "/healthz" -> {
          String reason = unhealthyReason.get();
          answer(
              ctx,
              keepAlive,
              reason == null
                  ? new Answer(200, "text/plain", "ok\n")
                  : new Answer(503, "text/plain", "unhealthy: " + reason + "\n"));
        }
        case "/ready" -> {
          String reason = notReadyReason.get();
          answer(
              ctx,
              keepAlive,
              reason == null
                  ? new Answer(200, "text/plain", "ready\n")
                  : new Answer(503, "text/plain", "not ready: " + reason + "\n"));
        }
        case "/metrics" ->
            offload(
                ctx,
                keepAlive,
                () -> new Answer(200, "text/plain; version=0.0.4; charset=utf-8", metrics.get()));
        case "/config_dump" -> {
          if (!privileged.test(peer.getAddress())) {
            log.warn("admin: refused /config_dump to {}", peer.getAddress().getHostAddress());
            answer(
                ctx,
                keepAlive,
                new Answer(
                    403,
                    "text/plain",
                    "the config dump is served to loopback only (kubectl port-forward, or kubectl"
                        + " exec and curl 127.0.0.1); this request came from "
                        + peer.getAddress().getHostAddress()
                        + "\n"));
            return;
          }
          offload(ctx, keepAlive, () -> new Answer(200, "application/json", configDump.get()));
        }
        case "/logging" ->
            offload(
                ctx,
                keepAlive,
                () ->
                    ExchangeAdapter.run(logging, method, uri, peer, ctx.channel().localAddress()));
        default -> answer(ctx, keepAlive, new Answer(404, "text/plain", "not found\n"));
      }
    }

    /** Runs {@code work} on the pool and answers on the loop; 503 when the pool is full. */
    private void offload(ChannelHandlerContext ctx, boolean keepAlive, Supplier<Answer> work) {
      try {
        workers.execute(
            () -> {
              Answer a;
              try {
                a = work.get();
              } catch (RuntimeException e) {
                log.warn("admin: request failed", e);
                a = new Answer(500, "text/plain", "failed: " + e + "\n");
              }
              Answer done = a;
              ctx.executor().execute(() -> answer(ctx, keepAlive, done));
            });
      } catch (RejectedExecutionException e) {
        answer(ctx, false, new Answer(503, "text/plain", "admin busy, try again\n"));
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

  /** One answer: status, content type and body. */
  record Answer(int status, String type, String body) {}
}
