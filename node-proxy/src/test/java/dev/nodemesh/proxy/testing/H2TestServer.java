package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.handler.codec.http.DefaultFullHttpResponse;
import io.netty.handler.codec.http.FullHttpRequest;
import io.netty.handler.codec.http.HttpObjectAggregator;
import io.netty.handler.codec.http.HttpResponseStatus;
import io.netty.handler.codec.http.HttpVersion;
import io.netty.handler.codec.http2.Http2FrameCodecBuilder;
import io.netty.handler.codec.http2.Http2MultiplexHandler;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.handler.codec.http2.Http2StreamFrameToHttpObjectCodec;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * An HTTP/2 cleartext (prior knowledge only) server inside a pod namespace, on Netty: answers
 * {@code pod=<name>}, {@code proto=h2}, {@code uri=<path>}. Counts connections and streams, so a
 * test can see that the proxy multiplexes requests over few upstream connections.
 */
public final class H2TestServer implements AutoCloseable {
  private final EventLoopGroup group;
  private final Channel server;
  private final Set<Channel> connections = ConcurrentHashMap.newKeySet();
  private final AtomicInteger streams = new AtomicInteger();

  private H2TestServer(EventLoopGroup group, Channel server) {
    this.group = group;
    this.server = server;
  }

  public static H2TestServer start(Path netns, int port, String pod) throws IOException {
    EventLoopGroup group = new MultiThreadIoEventLoopGroup(1, NioIoHandler.newFactory());
    H2TestServer[] self = new H2TestServer[1];
    ServerBootstrap b =
        new ServerBootstrap()
            .group(group)
            .channel(NioServerSocketChannel.class)
            .childHandler(
                new ChannelInitializer<SocketChannel>() {
                  @Override
                  protected void initChannel(SocketChannel ch) {
                    self[0].connections.add(ch);
                    ch.pipeline()
                        .addLast(
                            Http2FrameCodecBuilder.forServer().build(),
                            new Http2MultiplexHandler(
                                new ChannelInitializer<Http2StreamChannel>() {
                                  @Override
                                  protected void initChannel(Http2StreamChannel s) {
                                    self[0].streams.incrementAndGet();
                                    s.pipeline()
                                        .addLast(
                                            new Http2StreamFrameToHttpObjectCodec(true),
                                            new HttpObjectAggregator(1 << 20),
                                            new Answer(pod));
                                  }
                                }));
                  }
                });
    Channel ch;
    try (NetworkNamespace ns = NetworkNamespace.open(netns);
        NetworkNamespace.Scope in = ns.enter()) {
      // The NIO server socket is opened here, on this thread, inside the pod's namespace.
      ch = b.bind(new InetSocketAddress("0.0.0.0", port)).syncUninterruptibly().channel();
    } catch (RuntimeException e) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw e;
    }
    self[0] = new H2TestServer(group, ch);
    return self[0];
  }

  public int connections() {
    return connections.size();
  }

  public int streams() {
    return streams.get();
  }

  private static final class Answer extends SimpleChannelInboundHandler<FullHttpRequest> {
    private final String pod;

    Answer(String pod) {
      this.pod = pod;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, FullHttpRequest req) {
      byte[] body =
          ("pod=" + pod + "\nproto=h2\nuri=" + req.uri() + "\n").getBytes(StandardCharsets.UTF_8);
      DefaultFullHttpResponse resp =
          new DefaultFullHttpResponse(
              HttpVersion.HTTP_1_1, HttpResponseStatus.OK, Unpooled.wrappedBuffer(body));
      resp.headers().setInt("content-length", body.length).set("content-type", "text/plain");
      ctx.writeAndFlush(resp);
    }
  }

  @Override
  public void close() {
    server.close().syncUninterruptibly();
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).syncUninterruptibly();
  }
}
