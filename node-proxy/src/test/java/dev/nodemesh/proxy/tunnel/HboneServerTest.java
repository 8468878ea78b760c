package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.transport.TransportKind;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.handler.codec.http.HttpMethod;
import io.netty.handler.codec.http2.DefaultHttp2DataFrame;
import io.netty.handler.codec.http2.DefaultHttp2Headers;
import io.netty.handler.codec.http2.DefaultHttp2HeadersFrame;
import io.netty.handler.codec.http2.Http2Error;
import io.netty.handler.codec.http2.Http2FrameCodec;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2GoAwayFrame;
import io.netty.handler.codec.http2.Http2HeadersFrame;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2ResetFrame;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamChannelBootstrap;
import io.netty.handler.ssl.SslContext;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.Future;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.SocketAddress;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The 15008 server pipeline between two {@link EmbeddedChannel}s: real BoringSSL handshakes and the
 * real HTTP/2 codec, bytes shuttled by hand, no socket. Covers what is refused before any upstream
 * connection is made (the allowed path is in the two-node root test).
 */
class HboneServerTest {
  private static final String TD = "cluster.local";
  private static final SpiffeId CLIENT = new SpiffeId(TD, "default", "client");
  private static final SpiffeId ECHO = new SpiffeId(TD, "default", "echo");
  private static final String ECHO_IP = "10.214.2.11";

  private final Queue<ConnectionSource> seen = new ConcurrentLinkedQueue<>();
  private final Queue<Throwable> clientErrors = new ConcurrentLinkedQueue<>();
  private final Queue<Http2GoAwayFrame> goAways = new ConcurrentLinkedQueue<>();
  private final MutableClock clock = new MutableClock();
  private TestIdentities.Ca root;
  private Tunnel tunnel;
  private DataPlane plane;
  private EnrolledPod pod;
  private NetworkNamespace netns;
  private io.netty.channel.EventLoopGroup group;
  private EmbeddedChannel server;
  private EmbeddedChannel client;

  @BeforeEach
  void setUp() throws Exception {
    root = TestIdentities.Ca.create("root");
    ProxyMetrics metrics = new ProxyMetrics("node-2");
    tunnel =
        new Tunnel(
            "node-2",
            TD,
            new TestIdentities(root),
            (snapshot, dst, port, src) -> {
              seen.add(src);
              return port == 9999
                  ? new Decision(false, "default/deny-9999", "denied_by_policy")
                  : new Decision(true, "default-allow", "allowed");
            },
            TunnelSettings.defaults(),
            metrics.registry(),
            clock);
    Workload echo =
        new Workload(
            "uid-echo-1",
            "echo-1",
            "default",
            List.of(InetAddress.getByName(ECHO_IP)),
            Map.of("app", "echo"),
            "echo",
            "node-2",
            Map.of());
    Transport nio = Transport.of(TransportKind.NIO);
    group = nio.newGroup(1, r -> new Thread(r, "test-loop"));
    plane =
        DataPlane.builder(
                nio,
                group,
                group,
                new SnapshotHolder(new ConfigSnapshot(1, List.of(echo), List.of())),
                new PodRegistry(),
                metrics,
                null,
                0)
            .authorizer(tunnel.authorizer())
            .tunnel(tunnel)
            .build();
    netns = NetworkNamespace.open(Path.of("/proc/self/ns/net"));
    pod =
        new EnrolledPod(
            "uid-echo-1",
            "echo-1",
            "default",
            "/proc/self/ns/net",
            List.of(InetAddress.getByName(ECHO_IP)),
            netns);
    server = new PeerChannel("10.214.1.10");
    server
        .pipeline()
        .addLast(
            HboneServer.tlsSetup(
                tunnel,
                new HboneServer.Context(
                    plane.snapshots(),
                    plane.metrics(),
                    plane.accessLog(),
                    plane.upstreams().direct(),
                    plane.paths(),
                    plane.admissions()),
                pod));
    server.pipeline().fireChannelActive();
  }

  @AfterEach
  void tearDown() throws Exception {
    goAways.forEach(ReferenceCountUtil::release);
    if (client != null) {
      client.finishAndReleaseAll();
    }
    server.finishAndReleaseAll();
    netns.close();
    group.shutdownGracefully(0, 1, java.util.concurrent.TimeUnit.SECONDS).sync();
  }

  /** A clock the test moves by hand. */
  private static final class MutableClock extends Clock {
    private volatile Instant now = Instant.now();

    void advance(Duration d) {
      now = now.plus(d);
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }

    @Override
    public Instant instant() {
      return now;
    }
  }

  /** An embedded channel whose peer has an IP, as an accepted socket does. */
  private static final class PeerChannel extends EmbeddedChannel {
    private final InetSocketAddress peer;

    PeerChannel(String ip) {
      super(false, false);
      this.peer = new InetSocketAddress(ip, 40000);
      register0();
    }

    private void register0() {
      try {
        register();
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    }

    @Override
    protected SocketAddress remoteAddress0() {
      return peer;
    }
  }

  private void connectClient(TestIdentities ids) throws Exception {
    SslContext ctx =
        TunnelTls.build(
            ids.certificate(CLIENT).toCompletableFuture().get(), ids.trustAnchors(), false);
    client = new PeerChannel(ECHO_IP);
    client.pipeline().addLast(ctx.newHandler(client.alloc()));
    client.pipeline().addLast(Http2FrameCodecBuilder.forClient().build());
    client
        .pipeline()
        .addLast(
            new Http2MultiplexHandler(
                new ChannelInitializer<Http2StreamChannel>() {
                  @Override
                  protected void initChannel(Http2StreamChannel ch) {}
                }));
    client
        .pipeline()
        .addLast(
            new ChannelInboundHandlerAdapter() {
              @Override
              public void channelRead(ChannelHandlerContext ctx, Object msg) {
                if (msg instanceof Http2GoAwayFrame g) {
                  goAways.add(g.retain());
                }
                ReferenceCountUtil.release(msg);
              }
            });
    client.pipeline().fireChannelActive();
    shuttle();
  }

  /** Moves bytes both ways until neither side has anything more to say. */
  private void shuttle() {
    for (int i = 0; i < 200; i++) {
      boolean moved = false;
      server.runPendingTasks();
      client.runPendingTasks();
      Object o;
      while ((o = client.readOutbound()) != null) {
        moved = true;
        if (server.isOpen()) {
          server.writeInbound(o);
        } else {
          ReferenceCountUtil.release(o);
        }
      }
      while ((o = server.readOutbound()) != null) {
        moved = true;
        if (client.isOpen()) {
          try {
            client.writeInbound(o);
          } catch (io.netty.handler.codec.DecoderException e) {
            clientErrors.add(e.getCause() != null ? e.getCause() : e); // e.g. the server's alert
          }
        } else {
          ReferenceCountUtil.release(o);
        }
      }
      if (!moved) {
        return;
      }
    }
  }

  /** Opens a stream, sends CONNECT to {@code authority}, returns the answer's :status or reset. */
  private String connect(String authority) throws Exception {
    return connect(authority, null);
  }

  /**
   * As {@link #connect(String)}, with {@code early} sent as DATA right behind the HEADERS, in the
   * same flush, before any answer (as the sending node's L4 relay does with the client's first
   * bytes).
   */
  private String connect(String authority, @Nullable String early) throws Exception {
    Queue<Object> answers = new ConcurrentLinkedQueue<>();
    Future<Http2StreamChannel> f =
        new Http2StreamChannelBootstrap(client)
            .handler(
                new ChannelInboundHandlerAdapter() {
                  @Override
                  public void channelRead(ChannelHandlerContext ctx, Object msg) {
                    if (msg instanceof Http2HeadersFrame h) {
                      answers.add(String.valueOf(h.headers().status()));
                    }
                    ReferenceCountUtil.release(msg);
                  }

                  @Override
                  public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
                    if (evt instanceof Http2ResetFrame r) {
                      answers.add("reset " + Http2Error.valueOf(r.errorCode()));
                    }
                  }
                })
            .open();
    client.runPendingTasks();
    Http2StreamChannel stream = f.get();
    stream.write(
        new DefaultHttp2HeadersFrame(
            new DefaultHttp2Headers().method(HttpMethod.CONNECT.asciiName()).authority(authority)));
    if (early != null) {
      stream.write(
          new DefaultHttp2DataFrame(
              Unpooled.copiedBuffer(early, java.nio.charset.StandardCharsets.US_ASCII)));
    }
    stream.flush();
    shuttle();
    Object first = answers.poll();
    return first == null ? "none" : first.toString();
  }

  private double counter(String name) {
    return plane.metrics().registry().find(name).tag("reporter", "destination").counter().count();
  }

  @Test
  void aDeniedCallerGets403AndPolicySawItsVerifiedIdentity() throws Exception {
    connectClient(new TestIdentities(root));
    assertEquals("403", connect(ECHO_IP + ":9999"));
    ConnectionSource src = seen.poll();
    assertEquals(CLIENT, src.principal());
    assertEquals(InetAddress.getByName("10.214.1.10"), src.address());
    assertTrue(src.mutualTls());
    assertEquals(1, counter("nodemesh.tunnel.streams.refused"));
    assertEquals(1, counter("nodemesh.tunnel.streams.opened"));
    assertEquals(
        1,
        plane
            .metrics()
            .registry()
            .find("nodemesh.tunnel.connections.open")
            .tag("reporter", "destination")
            .gauge()
            .value());
  }

  @Test
  void dataRightBehindTheConnectWaitsForTheAnswerInsteadOfResettingTheStream() throws Exception {
    connectClient(new TestIdentities(root));
    // The server reads the HEADERS alone; the DATA stays queued in the stream (and goes with it
    // when the stream ends), so the caller gets the policy's answer, not a reset.
    assertEquals("403", connect(ECHO_IP + ":9999", "GET / HTTP/1.1\r\nHost: echo\r\n\r\n"));
    assertEquals(1, counter("nodemesh.tunnel.streams.refused"));
    assertEquals(1, counter("nodemesh.tunnel.streams.opened"));
  }

  @Test
  void anotherPodsAddressOrAMalformedAuthorityGets400WithoutAskingPolicy() throws Exception {
    connectClient(new TestIdentities(root));
    assertEquals("400", connect("10.214.2.99:8080"));
    assertEquals("400", connect("echo.default:8080"));
    assertEquals("400", connect(ECHO_IP + ":0"));
    assertTrue(seen.isEmpty(), seen.toString());
    assertEquals(3, counter("nodemesh.tunnel.streams.refused"));
  }

  @Test
  void aClientFromAnotherRootIsRefusedInTheHandshake() throws Exception {
    TestIdentities.Ca other = TestIdentities.Ca.create("other");
    TestIdentities rogue = new TestIdentities(root).signWith(CLIENT, other);
    connectClient(rogue);
    assertFalse(server.isOpen(), "the server closed the connection");
    assertEquals(1, counter("nodemesh.tunnel.handshake.failures"));
    assertTrue(seen.isEmpty());
    assertTrue(
        clientErrors.stream().anyMatch(e -> e instanceof javax.net.ssl.SSLException),
        "the client was told by a TLS alert: " + clientErrors);
  }

  @Test
  void theServerPresentsThePodsOwnIdentity() throws Exception {
    connectClient(new TestIdentities(root));
    io.netty.handler.ssl.SslHandler ssl =
        client.pipeline().get(io.netty.handler.ssl.SslHandler.class);
    assertEquals(ECHO, PeerIdentity.of(ssl.engine().getSession(), TD));
    assertEquals("TLSv1.3", ssl.engine().getSession().getProtocol());
    assertEquals("h2", ssl.applicationProtocol());
  }

  @Test
  void theServerAdvertisesLargeFramesAndConsolidatesFlushes() throws Exception {
    connectClient(new TestIdentities(root));
    assertTrue(server.isOpen());
    assertTrue(
        server.pipeline().get(io.netty.handler.flush.FlushConsolidationHandler.class) != null,
        "flush consolidation in front of TLS: " + server.pipeline().names());
    assertEquals(
        Tunnel.CONNECTION_WATER_MARK.high(), server.config().getWriteBufferWaterMark().high());
    io.netty.handler.codec.http2.Http2FrameCodec codec =
        client.pipeline().get(io.netty.handler.codec.http2.Http2FrameCodec.class);
    assertEquals(
        Tunnel.MAX_FRAME_SIZE,
        codec.encoder().configuration().frameSizePolicy().maxFrameSize(),
        "the client may send DATA frames as large as the server advertised");
  }

  @Test
  void onceTheHandshakeCertificatesExpireNewStreamsAreRefusedAndTheClientToldToDrain()
      throws Exception {
    connectClient(new TestIdentities(root)); // certificates valid for an hour
    assertEquals("403", connect(ECHO_IP + ":9999"), "before expiry a stream is processed");
    assertEquals(1, seen.size());
    assertTrue(goAways.isEmpty());

    clock.advance(Duration.ofMinutes(61));
    assertEquals("reset REFUSED_STREAM", connect(ECHO_IP + ":8080"));
    assertEquals(1, seen.size(), "policy was not asked for the refused stream");
    assertEquals(2, counter("nodemesh.tunnel.streams.refused"));
    Http2GoAwayFrame g = goAways.poll();
    assertTrue(g != null, "the server sent GOAWAY");
    assertEquals(Http2Error.NO_ERROR.code(), g.errorCode());
    assertEquals(
        client.pipeline().get(Http2FrameCodec.class).connection().local().lastStreamCreated(),
        g.lastStreamId(),
        "the refused stream is answered by its reset, not by GOAWAY");
    assertTrue(goAways.isEmpty(), "one GOAWAY");
    g.release();
    // The connection itself is not cut: streams opened before the expiry go on.
    assertTrue(server.isOpen());
    assertTrue(client.isOpen());
  }

  @Test
  void theClientRetriesOnlyAStreamTheServerRefused() {
    java.util.List<ConnectResponseHandler.Answer> got = new java.util.ArrayList<>();
    EmbeddedChannel refused = new EmbeddedChannel(new ConnectResponseHandler(got::add));
    refused
        .pipeline()
        .fireUserEventTriggered(
            new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(Http2Error.REFUSED_STREAM));
    EmbeddedChannel cancelled = new EmbeddedChannel(new ConnectResponseHandler(got::add));
    cancelled
        .pipeline()
        .fireUserEventTriggered(
            new io.netty.handler.codec.http2.DefaultHttp2ResetFrame(Http2Error.CANCEL));
    EmbeddedChannel ok = new EmbeddedChannel(new ConnectResponseHandler(got::add));
    ok.writeInbound(new DefaultHttp2HeadersFrame(new DefaultHttp2Headers().status("200")));
    assertEquals(
        java.util.List.of(
            ConnectResponseHandler.Answer.REFUSED,
            ConnectResponseHandler.Answer.FAILED,
            ConnectResponseHandler.Answer.OK),
        got);
    assertFalse(refused.isOpen());
    assertTrue(ok.isOpen());
    refused.finishAndReleaseAll();
    cancelled.finishAndReleaseAll();
    ok.finishAndReleaseAll();
  }
}
