package dev.nodemesh.scripts.loadgen;

import io.netty.bootstrap.Bootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpRequest;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpClientCodec;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaderValues;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2DataFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2Headers;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.net.URI;
import java.time.Duration;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.HdrHistogram.Histogram;
import org.jspecify.annotations.Nullable;

/**
 * An open-loop HTTP load generator on one Netty event loop. Request {@code i} (counting from 0 over
 * warm-up and measurement) has the intended send time {@code start + i / rate}; when that time has
 * come it joins a queue and is written as soon as a connection (HTTP/1.1 keep-alive), a stream slot
 * (h2c) or a connection budget (new connection per request) is free. Its latency is the response's
 * completion time minus the <em>intended</em> time, so time spent queued behind a slow response
 * counts, as it would for a real client arriving at that rate (no coordinated omission).
 *
 * <p>All state is confined to the event loop thread; {@link #run} only starts and waits, and {@link
 * #stop} only sets a flag the schedule reads.
 */
public final class LoadGen {
  /** How requests travel. */
  public enum Mode {
    /** HTTP/1.1 over {@code connections} kept-alive connections, one request at a time each. */
    HTTP1,
    /**
     * h2c with prior knowledge, {@code connections} connections with up to {@code streams} each.
     */
    H2C,
    /** HTTP/1.1 with {@code Connection: close}: a new TCP connection per request. */
    HTTP1_CLOSE
  }

  /**
   * @param url http://host:port/path (an IP literal or a name)
   * @param rate intended requests per second
   * @param duration measured period; {@code rate * duration} requests are scheduled in it
   * @param warmup period before it at the same rate whose requests are not recorded
   * @param connections kept-alive connections, or the most connections open at once (new connection
   *     mode)
   * @param streams most concurrent streams per connection (h2c)
   * @param drain how long to wait for outstanding responses after the last intended time; what is
   *     still outstanding then counts as timed out
   */
  public record Options(
      URI url,
      Mode mode,
      double rate,
      Duration duration,
      Duration warmup,
      int connections,
      int streams,
      Duration drain) {
    public Options {
      if (!"http".equals(url.getScheme()) || url.getHost() == null) {
        throw new IllegalArgumentException("url must be http://host[:port]/path, got " + url);
      }
      if (!(rate > 0) || Double.isInfinite(rate)) {
        throw new IllegalArgumentException("rate must be > 0, got " + rate);
      }
      if (duration.isNegative() || duration.isZero()) {
        throw new IllegalArgumentException("duration must be > 0, got " + duration);
      }
      if (warmup.isNegative() || drain.isNegative()) {
        throw new IllegalArgumentException("warmup and drain must be >= 0");
      }
      if (connections < 1 || streams < 1) {
        throw new IllegalArgumentException("connections and streams must be >= 1");
      }
      if (rate * (duration.toNanos() + warmup.toNanos()) / 1e9 > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("rate x duration is too many requests");
      }
    }

    /** Requests in the measured period. */
    public long measured() {
      return Math.round(rate * duration.toNanos() / 1e9);
    }

    /** Requests in the warm-up period. */
    public long warmupRequests() {
      return Math.round(rate * warmup.toNanos() / 1e9);
    }

    int port() {
      return url.getPort() > 0 ? url.getPort() : 80;
    }

    String pathAndQuery() {
      String p = url.getRawPath() == null || url.getRawPath().isEmpty() ? "/" : url.getRawPath();
      return url.getRawQuery() == null ? p : p + "?" + url.getRawQuery();
    }

    String authority() {
      return url.getPort() > 0 ? url.getHost() + ":" + url.getPort() : url.getHost();
    }
  }

  private final Options opts;

  /** Requests scheduled over warm-up and measurement; lowered once by {@link #stop}. */
  private long total;

  /** Set by {@link #stop} from any thread, read by {@link #tick} on the event loop. */
  private volatile boolean stopRequested;

  private boolean stopped;
  private final long warmupCount;
  private final Histogram histogram = new Histogram(TimeUnit.SECONDS.toNanos(60), 3);
  private final ArrayDeque<Long> queue = new ArrayDeque<>();
  private final ArrayDeque<Channel> idle = new ArrayDeque<>();
  private final List<H2Connection> h2 = new ArrayList<>();
  private final CompletableFuture<Void> done = new CompletableFuture<>();
  private final CompletableFuture<Void> primed = new CompletableFuture<>();
  private int primingLeft;
  private @Nullable EventLoop loop;
  private @Nullable Bootstrap bootstrap;
  private long start;
  private boolean started;
  private long next;
  private long inFlight;
  private long lastCompletion;
  private int openConnections;
  private boolean finished;
  // counters of the measured period
  private long sent;
  private long completed;
  private long non2xx;
  private long connectErrors;
  private long resets;
  private long reconnects;

  public LoadGen(Options opts) {
    this.opts = opts;
    this.warmupCount = opts.warmupRequests();
    this.total = warmupCount + opts.measured();
  }

  /** Runs the whole schedule and returns the summary of the measured period. */
  public LoadGenResult run() throws InterruptedException {
    IoHandlerFactory io =
        Epoll.isAvailable() ? EpollIoHandler.newFactory() : NioIoHandler.newFactory();
    Class<? extends SocketChannel> channelClass =
        Epoll.isAvailable() ? EpollSocketChannel.class : NioSocketChannel.class;
    EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, io);
    try {
      EventLoop el = group.next();
      loop = el;
      InetSocketAddress target = new InetSocketAddress(opts.url().getHost(), opts.port());
      bootstrap =
          new Bootstrap()
              .group(el)
              .channel(channelClass)
              .remoteAddress(target)
              .option(ChannelOption.TCP_NODELAY, true)
              .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, 5000);
      if (opts.mode() != Mode.HTTP1_CLOSE) {
        openKeptAliveConnections();
        // One request per connection before the clock starts: class loading and the first
        // (interpreted) pass through the codecs happen here, not in the schedule.
        el.execute(this::prime);
        try {
          primed.get(30, TimeUnit.SECONDS);
        } catch (ExecutionException | TimeoutException e) {
          throw new IllegalStateException("no answer to the priming requests: " + e, e);
        }
      }
      el.execute(
          () -> {
            start = System.nanoTime();
            started = true;
            tick();
          });
      long budget =
          opts.warmup().toNanos()
              + opts.duration().toNanos()
              + opts.drain().toNanos()
              + TimeUnit.SECONDS.toNanos(30);
      try {
        done.get(budget, TimeUnit.NANOSECONDS);
      } catch (ExecutionException | TimeoutException e) {
        throw new IllegalStateException("load generator did not finish: " + e, e);
      }
      CompletableFuture<LoadGenResult> result = new CompletableFuture<>();
      el.execute(() -> result.complete(summary()));
      try {
        return result.get(10, TimeUnit.SECONDS);
      } catch (ExecutionException | TimeoutException e) {
        throw new IllegalStateException("no summary: " + e, e);
      }
    } finally {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
    }
  }

  private void openKeptAliveConnections() throws InterruptedException {
    List<ChannelFuture> futures = new ArrayList<>();
    for (int i = 0; i < opts.connections(); i++) {
      futures.add(connect());
    }
    for (ChannelFuture f : futures) {
      f.await();
      if (!f.isSuccess()) {
        throw new IllegalStateException(
            "cannot connect to " + opts.url() + ": " + f.cause(), f.cause());
      }
    }
    // h2: the connection preface and SETTINGS are on the wire; idle keep-alive channels ready.
  }

  /** Sentinel request index of a priming request (never recorded). */
  private static final long PRIME = -2;

  /** No request outstanding on an HTTP/1.1 connection. */
  private static final long NONE = -1;

  private void prime() {
    if (opts.mode() == Mode.HTTP1) {
      List<Channel> channels = new ArrayList<>(idle);
      idle.clear();
      primingLeft = channels.size();
      for (Channel ch : channels) {
        send1(ch, handlerOf(ch), PRIME);
      }
    } else {
      List<H2Connection> conns = new ArrayList<>(h2);
      primingLeft = conns.size();
      for (H2Connection c : conns) {
        sendH2(c, PRIME);
      }
    }
    if (primingLeft == 0) {
      primed.completeExceptionally(new IllegalStateException("no connection to prime"));
    }
  }

  /** Accounts for a priming request's end; true if {@code index} was one. */
  private boolean primingDone(long index) {
    if (index != PRIME) {
      return false;
    }
    if (--primingLeft == 0) {
      primed.complete(null);
    }
    return true;
  }

  private ChannelFuture connect() {
    Bootstrap b = bootstrap();
    return switch (opts.mode()) {
      case HTTP1 -> b.clone().handler(new Http1Init(true)).connect();
      case HTTP1_CLOSE -> b.clone().handler(new Http1Init(false)).connect();
      case H2C -> b.clone().handler(new H2Init()).connect();
    };
  }

  private Bootstrap bootstrap() {
    Bootstrap b = bootstrap;
    if (b == null) {
      throw new IllegalStateException("not started");
    }
    return b;
  }

  private EventLoop loop() {
    EventLoop l = loop;
    if (l == null) {
      throw new IllegalStateException("not started");
    }
    return l;
  }

  /**
   * Ends the schedule early, from any thread: from the next tick on (at most one request interval
   * later) no further request is scheduled; those already scheduled still run and drain as at a
   * normal end, and the summary counts the measured period up to there (a caller that must load
   * "until something is done" bounds the run with the duration and stops it here).
   */
  public void stop() {
    stopRequested = true;
  }

  /** Intended send time of request {@code i}, from the start: no drift however late ticks run. */
  long intended(long i) {
    return start + (long) (i * 1e9 / opts.rate());
  }

  /** Moves every request whose intended time has come into the queue, sends, re-arms itself. */
  private void tick() {
    long now = System.nanoTime();
    if (stopRequested && !stopped) {
      stopped = true;
      // At least one request, so the drain below has an intended time to count from.
      total = Math.min(total, Math.max(next, 1));
    }
    while (next < total && intended(next) <= now) {
      queue.add(next);
      next++;
    }
    dispatch();
    if (next < total) {
      loop().schedule(this::tick, Math.max(0, intended(next) - now), TimeUnit.NANOSECONDS);
    } else {
      long drainEnd = intended(total - 1) + opts.drain().toNanos();
      loop().schedule(this::finish, Math.max(0, drainEnd - now), TimeUnit.NANOSECONDS);
      checkDone();
    }
  }

  private void dispatch() {
    while (!queue.isEmpty() && !finished) {
      switch (opts.mode()) {
        case HTTP1 -> {
          Channel ch = idle.poll();
          if (ch == null) {
            return;
          }
          send1(ch, handlerOf(ch), queue.remove());
        }
        case HTTP1_CLOSE -> {
          if (openConnections >= opts.connections()) {
            return;
          }
          long index = queue.remove();
          openConnections++;
          inFlight++;
          ChannelFuture f = connect();
          f.addListener(
              x -> {
                if (!f.isSuccess()) {
                  openConnections--;
                  inFlight--;
                  if (measured(index)) {
                    connectErrors++;
                  }
                  dispatch();
                  checkDone();
                  return;
                }
                Channel ch = f.channel();
                ch.closeFuture()
                    .addListener(
                        y -> {
                          openConnections--;
                          dispatch();
                        });
                send1(ch, handlerOf(ch), index);
                inFlight--; // send1 counted it again
              });
        }
        case H2C -> {
          H2Connection c = leastLoaded();
          if (c == null) {
            return;
          }
          sendH2(c, queue.remove());
        }
      }
    }
  }

  private static Http1Handler handlerOf(Channel ch) {
    return java.util.Objects.requireNonNull(ch.pipeline().get(Http1Handler.class));
  }

  private boolean measured(long index) {
    return index >= warmupCount;
  }

  private @Nullable H2Connection leastLoaded() {
    H2Connection best = null;
    for (H2Connection c : h2) {
      if (c.parent.isActive()
          && c.active < opts.streams()
          && (best == null || c.active < best.active)) {
        best = c;
      }
    }
    return best;
  }

  private void send1(Channel ch, Http1Handler h, long index) {
    FullHttpRequest req =
        new DefaultFullHttpRequest(
            HttpVersion.HTTP_1_1, HttpMethod.GET, opts.pathAndQuery(), Unpooled.EMPTY_BUFFER);
    req.headers().set(HttpHeaderNames.HOST, opts.authority());
    if (opts.mode() == Mode.HTTP1_CLOSE) {
      req.headers().set(HttpHeaderNames.CONNECTION, HttpHeaderValues.CLOSE);
    }
    h.pending = index;
    if (index != PRIME) {
      inFlight++;
    }
    if (measured(index)) {
      sent++;
    }
    ch.writeAndFlush(req);
  }

  private void sendH2(H2Connection c, long index) {
    c.active++;
    if (index != PRIME) {
      inFlight++;
    }
    if (measured(index)) {
      sent++;
    }
    H2StreamHandler handler = new H2StreamHandler(c, index);
    new Http2StreamChannelBootstrap(c.parent)
        .handler(handler)
        .open()
        .addListener(
            f -> {
              if (!f.isSuccess()) {
                handler.fail();
                return;
              }
              Http2StreamChannel s = (Http2StreamChannel) f.getNow();
              Http2Headers headers =
                  new DefaultHttp2Headers()
                      .method("GET")
                      .scheme("http")
                      .authority(opts.authority())
                      .path(opts.pathAndQuery());
              s.writeAndFlush(new DefaultHttp2HeadersFrame(headers, true));
            });
  }

  /** A response to request {@code index} is complete. */
  private void completed(long index, int status) {
    if (primingDone(index)) {
      return;
    }
    inFlight--;
    long now = System.nanoTime();
    if (measured(index) && !finished) {
      completed++;
      lastCompletion = now;
      histogram.recordValue(
          Math.min(Math.max(0, now - intended(index)), histogram.getHighestTrackableValue()));
      if (status < 200 || status >= 400) {
        non2xx++;
      }
    }
  }

  /** Request {@code index} failed without a response (reset, closed). */
  private void failed(long index) {
    if (primingDone(index)) {
      return;
    }
    inFlight--;
    if (measured(index) && !finished) {
      resets++;
    }
  }

  private void checkDone() {
    if (next >= total && queue.isEmpty() && inFlight == 0) {
      finish();
    }
  }

  private void finish() {
    if (finished) {
      return;
    }
    finished = true;
    for (Channel ch : idle) {
      ch.close();
    }
    for (H2Connection c : h2) {
      c.parent.close();
    }
    done.complete(null);
  }

  private LoadGenResult summary() {
    long scheduled = stopped ? Math.max(0, total - warmupCount) : opts.measured();
    long timeouts = Math.max(0, scheduled - completed - resets - connectErrors);
    long measuredStart = intended(warmupCount);
    double elapsed = completed == 0 ? 0 : (lastCompletion - measuredStart) / 1e9;
    return new LoadGenResult(
        opts.mode(),
        opts.url().toString(),
        opts.connections(),
        opts.mode() == Mode.H2C ? opts.streams() : 1,
        opts.rate(),
        stopped ? scheduled / opts.rate() : opts.duration().toNanos() / 1e9,
        scheduled,
        sent,
        completed,
        non2xx,
        connectErrors,
        resets,
        timeouts,
        reconnects,
        elapsed > 0 ? completed / elapsed : 0,
        histogram.copy());
  }

  // ---- HTTP/1.1 ----------------------------------------------------------------------------

  private final class Http1Init extends ChannelInitializer<SocketChannel> {
    private final boolean keepAlive;

    Http1Init(boolean keepAlive) {
      this.keepAlive = keepAlive;
    }

    @Override
    protected void initChannel(SocketChannel ch) {
      ch.pipeline()
          .addLast(new HttpClientCodec())
          .addLast(new HttpObjectAggregator(16 << 20))
          .addLast(new Http1Handler(keepAlive));
    }
  }

  private final class Http1Handler extends ChannelInboundHandlerAdapter {
    private final boolean keepAlive;

    /** The request this connection waits for, or {@link #NONE}. */
    long pending = NONE;

    Http1Handler(boolean keepAlive) {
      this.keepAlive = keepAlive;
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
      if (keepAlive) {
        idle.add(ctx.channel());
        if (started) {
          dispatch();
        }
      }
      ctx.fireChannelActive();
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        if (msg instanceof FullHttpResponse r && pending != NONE) {
          long index = pending;
          pending = NONE;
          completed(index, r.status().code());
          // A server that says Connection: close (a draining proxy) closes after this answer:
          // never reuse it, or the next request is written into a closing connection and fails.
          if (keepAlive && HttpUtil.isKeepAlive(r)) {
            idle.add(ctx.channel());
            dispatch();
          } else {
            ctx.close();
          }
          checkDone();
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      idle.remove(ctx.channel());
      if (pending != NONE) {
        long index = pending;
        pending = NONE;
        failed(index);
      }
      if (keepAlive && !finished) {
        // Keep the connection count: replace it (the request on it, if any, counted as a reset).
        reconnects++;
        connect();
      }
      checkDone();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }
  }

  // ---- h2c ---------------------------------------------------------------------------------

  private static final class H2Connection {
    final Channel parent;
    int active;

    H2Connection(Channel parent) {
      this.parent = parent;
    }
  }

  private final class H2Init extends ChannelInitializer<SocketChannel> {
    @Override
    protected void initChannel(SocketChannel ch) {
      H2Connection c = new H2Connection(ch);
      ch.pipeline()
          .addLast(Http2FrameCodecBuilder.forClient().build())
          .addLast(new Http2MultiplexHandler(new ChannelInboundHandlerAdapter()))
          .addLast(
              new ChannelInboundHandlerAdapter() {
                @Override
                public void channelActive(ChannelHandlerContext ctx) {
                  h2.add(c);
                  if (started) {
                    dispatch();
                  }
                  ctx.fireChannelActive();
                }

                @Override
                public void channelInactive(ChannelHandlerContext ctx) {
                  h2.remove(c);
                  if (!finished) {
                    reconnects++;
                    connect();
                  }
                  ctx.fireChannelInactive();
                }

                @Override
                public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
                  ctx.close();
                }
              });
    }
  }

  private final class H2StreamHandler extends ChannelInboundHandlerAdapter {
    private final H2Connection connection;
    private final long index;
    private int status;
    private boolean over;

    H2StreamHandler(H2Connection connection, long index) {
      this.connection = connection;
      this.index = index;
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        boolean end = false;
        if (msg instanceof Http2HeadersFrame h) {
          CharSequence s = h.headers().status();
          if (s != null && status == 0) {
            status = Integer.parseInt(s.toString());
          }
          end = h.isEndStream();
        } else if (msg instanceof Http2DataFrame d) {
          end = d.isEndStream();
        }
        if (end && !over) {
          over = true;
          connection.active--;
          completed(index, status);
          ctx.close();
          dispatch();
          checkDone();
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
      fail();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      ctx.close();
    }

    void fail() {
      if (!over) {
        over = true;
        connection.active--;
        failed(index);
        dispatch();
        checkDone();
      }
    }
  }
}
