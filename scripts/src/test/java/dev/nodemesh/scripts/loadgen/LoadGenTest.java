package dev.nodemesh.scripts.loadgen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.FullHttpResponse;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpServerCodec;
import io.netty.handler.codec.http.HttpUtil;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/**
 * The load generator against an in-process Netty server that counts what it receives. Counts are
 * exact (the schedule is {@code rate x duration} requests whatever the machine does); nothing here
 * asserts on how fast anything ran.
 */
class LoadGenTest {
  private final EventLoopGroup group =
      new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
  private final AtomicInteger requests = new AtomicInteger();
  private final AtomicInteger connections = new AtomicInteger();

  /** The request number (1-based, server side) whose response is held back, or 0. */
  private volatile int stallAt;

  private volatile long stallMillis;
  private volatile int status = 200;

  /** Every this-many-th request (server side) is answered with Connection: close, or 0. */
  private volatile int closeEvery;

  @AfterEach
  void stop() throws InterruptedException {
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(10, TimeUnit.SECONDS);
  }

  private URI startServer(boolean h2) throws InterruptedException {
    Channel server =
        new ServerBootstrap()
            .group(group)
            .channel(NioServerSocketChannel.class)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    connections.incrementAndGet();
                    if (h2) {
                      ch.pipeline()
                          .addLast(Http2FrameCodecBuilder.forServer().build())
                          .addLast(new Http2MultiplexHandler(new H2Responder()));
                    } else {
                      ch.pipeline()
                          .addLast(new HttpServerCodec())
                          .addLast(new HttpObjectAggregator(1 << 16))
                          .addLast(new H1Responder());
                    }
                  }
                })
            .bind("127.0.0.1", 0)
            .sync()
            .channel();
    int port = ((InetSocketAddress) server.localAddress()).getPort();
    return URI.create("http://127.0.0.1:" + port + "/1k");
  }

  /** Delay before answering this request: the one numbered {@code stallAt} waits, once. */
  private long delayFor(int n) {
    return n == stallAt ? stallMillis : 0;
  }

  private final class H1Responder extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      if (!(msg instanceof FullHttpRequest req)) {
        ReferenceCountUtil.release(msg);
        return;
      }
      int n = requests.incrementAndGet();
      boolean keepAlive = HttpUtil.isKeepAlive(req) && (closeEvery == 0 || n % closeEvery != 0);
      req.release();
      FullHttpResponse res =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1,
              HttpResponseStatus.valueOf(status),
              Unpooled.copiedBuffer("hello", StandardCharsets.US_ASCII));
      HttpUtil.setContentLength(res, 5);
      if (!keepAlive) {
        res.headers().set(HttpHeaderNames.CONNECTION, "close");
      }
      Runnable answer =
          () ->
              ctx.writeAndFlush(res)
                  .addListener(
                      f -> {
                        if (!keepAlive) {
                          ctx.close();
                        }
                      });
      long delay = delayFor(n);
      if (delay > 0) {
        ctx.executor().schedule(answer, delay, TimeUnit.MILLISECONDS);
      } else {
        answer.run();
      }
    }
  }

  @io.netty.channel.ChannelHandler.Sharable
  private final class H2Responder extends ChannelInboundHandlerAdapter {
    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
      try {
        if (msg instanceof Http2HeadersFrame h && h.isEndStream()) {
          requests.incrementAndGet();
          ctx.write(
              new DefaultHttp2HeadersFrame(
                  new DefaultHttp2Headers().status(Integer.toString(status)), false));
          ByteBuf body = Unpooled.copiedBuffer("hello", StandardCharsets.US_ASCII);
          ctx.writeAndFlush(new DefaultHttp2DataFrame(body, true));
        }
      } finally {
        ReferenceCountUtil.release(msg);
      }
    }
  }

  private static LoadGen.Options options(
      URI url, LoadGen.Mode mode, double rate, Duration duration, Duration warmup, int conns) {
    return new LoadGen.Options(url, mode, rate, duration, warmup, conns, 4, Duration.ofSeconds(20));
  }

  @Test
  void http1SendsExactlyTheScheduleOverKeptAliveConnections() throws Exception {
    URI url = startServer(false);
    LoadGenResult r =
        new LoadGen(
                options(
                    url, LoadGen.Mode.HTTP1, 400, Duration.ofSeconds(1), Duration.ofMillis(250), 3))
            .run();
    assertEquals(400, r.scheduled());
    assertEquals(400, r.sent());
    assertEquals(400, r.completed());
    assertEquals(0, r.errors());
    assertEquals(400, r.latencyNanos().getTotalCount());
    // One priming request per connection and 100 warm-up requests reached the server too, but
    // were not recorded.
    assertEquals(3 + 100 + 400, requests.get());
    assertEquals(3, connections.get());
    assertTrue(r.achievedRate() > 0);
  }

  /**
   * A draining server (a proxy being upgraded) answers with Connection: close and closes: the
   * generator must not write the next request into that connection, or it fails for no fault of the
   * server.
   */
  @Test
  void http1NeverReusesAConnectionTheServerAnsweredWithClose() throws Exception {
    closeEvery = 10;
    URI url = startServer(false);
    LoadGenResult r =
        new LoadGen(options(url, LoadGen.Mode.HTTP1, 400, Duration.ofSeconds(1), Duration.ZERO, 2))
            .run();
    assertEquals(400, r.completed());
    assertEquals(0, r.errors(), "no request written into a closing connection");
    assertEquals(2 + 400, requests.get());
    // The two first connections, and one more after each of the 40 answers with close.
    assertTrue(connections.get() >= 2 + 40, "reconnected: " + connections.get());
  }

  /**
   * A run stopped early (as UpgradeRootTest stops its load once the upgrades are done) ends long
   * before its duration, and what it scheduled until the stop all completed and is what it reports:
   * nothing is counted as timed out for not having been sent.
   */
  @Test
  void aStoppedRunReportsWhatItScheduledUntilTheStop() throws Exception {
    URI url = startServer(false);
    LoadGen gen =
        new LoadGen(
            options(url, LoadGen.Mode.HTTP1, 100, Duration.ofSeconds(60), Duration.ZERO, 2));
    Thread stopper =
        new Thread(
            () -> {
              try {
                while (requests.get() < 2 + 20) {
                  Thread.sleep(10);
                }
                gen.stop();
              } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
              }
            });
    stopper.start();
    LoadGenResult r = gen.run();
    stopper.join();
    assertTrue(r.scheduled() >= 20 && r.scheduled() < 6000, "scheduled " + r.scheduled());
    assertEquals(r.scheduled(), r.sent());
    assertEquals(r.scheduled(), r.completed());
    assertEquals(0, r.errors(), r.json());
    assertEquals(2 + r.scheduled(), requests.get());
    assertEquals(r.scheduled() / 100.0, r.durationSeconds(), 1e-9);
  }

  @Test
  void h2cMultiplexesTheScheduleOverItsConnections() throws Exception {
    URI url = startServer(true);
    LoadGenResult r =
        new LoadGen(options(url, LoadGen.Mode.H2C, 300, Duration.ofSeconds(1), Duration.ZERO, 2))
            .run();
    assertEquals(300, r.scheduled());
    assertEquals(300, r.completed());
    assertEquals(0, r.errors());
    assertEquals(2 + 300, requests.get()); // + one priming request per connection
    assertEquals(2, connections.get());
  }

  @Test
  void newConnectionModeOpensOneConnectionPerRequest() throws Exception {
    URI url = startServer(false);
    LoadGenResult r =
        new LoadGen(
                options(
                    url, LoadGen.Mode.HTTP1_CLOSE, 200, Duration.ofSeconds(1), Duration.ZERO, 8))
            .run();
    assertEquals(200, r.completed());
    assertEquals(0, r.errors());
    assertEquals(200, requests.get());
    assertEquals(200, connections.get());
  }

  @Test
  void non2xxResponsesAreCountedAsErrors() throws Exception {
    status = 503;
    URI url = startServer(false);
    LoadGenResult r =
        new LoadGen(options(url, LoadGen.Mode.HTTP1, 100, Duration.ofSeconds(1), Duration.ZERO, 1))
            .run();
    assertEquals(100, r.completed());
    assertEquals(100, r.non2xx());
    assertEquals(100, r.errors());
    assertTrue(r.json().contains("\"non_2xx\":100"), r.json());
  }

  /**
   * One connection, 1000 req/s, and the server holds the 50th response for 300 ms, once. A closed
   * loop would record one slow sample; measured from the intended send time every request whose
   * intended time fell in the first 200 ms of the stall waited at least 100 ms (its response could
   * not come before the stalled one), so at least ~200 samples are that slow however fast or slow
   * the machine is.
   */
  @Test
  void aStallCountsForEveryRequestItHoldsBack() throws Exception {
    stallAt = 50;
    stallMillis = 300;
    URI url = startServer(false);
    LoadGenResult r =
        new LoadGen(options(url, LoadGen.Mode.HTTP1, 1000, Duration.ofSeconds(2), Duration.ZERO, 1))
            .run();
    assertEquals(2000, r.completed());
    assertEquals(0, r.errors());
    long slow = r.samplesAtLeastMicros(100_000);
    assertTrue(slow >= 150, "requests held back >= 100 ms: " + slow + "\n" + r.text());
    assertTrue(r.maxMicros() >= 300_000, r.text());
  }

  @Test
  void badOptionsAreRefused() {
    URI url = URI.create("http://127.0.0.1:1/");
    assertThrows(
        IllegalArgumentException.class,
        () -> options(url, LoadGen.Mode.HTTP1, 0, Duration.ofSeconds(1), Duration.ZERO, 1));
    assertThrows(
        IllegalArgumentException.class,
        () -> options(url, LoadGen.Mode.HTTP1, 10, Duration.ZERO, Duration.ZERO, 1));
    assertThrows(
        IllegalArgumentException.class,
        () -> options(url, LoadGen.Mode.HTTP1, 10, Duration.ofSeconds(1), Duration.ZERO, 0));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            options(
                URI.create("https://127.0.0.1/"),
                LoadGen.Mode.HTTP1,
                10,
                Duration.ofSeconds(1),
                Duration.ZERO,
                1));
  }
}
