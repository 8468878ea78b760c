package dev.nodemesh.proxy.agent;

import dev.nodemesh.model.cni.AgentWire;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.SimpleChannelInboundHandler;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.handler.codec.LengthFieldBasedFrameDecoder;
import io.netty.handler.timeout.ReadTimeoutHandler;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Serves the node agent's three pod calls in the small framed protocol ({@link AgentWire}) on a
 * Unix socket of its own, for the CNI plugin: a process that starts once per pod start, which then
 * needs no gRPC, Netty or protobuf. Why a second socket rather than sniffing the gRPC socket's
 * first bytes: grpc-java offers no public hook to see a connection before its HTTP/2 handler, so
 * sniffing would mean relaying every gRPC connection through our own acceptor; beside it, the gRPC
 * service stays exactly as other clients (local mode, tests) know it. The socket is bound, renamed
 * into place and removed exactly like the gRPC one (owner-only, gapless on upgrade).
 *
 * <p>One event-loop thread ({@code nodemesh-agent-cni}), never the data plane's; it only decodes
 * and writes: the work runs wherever the {@link Handler} puts it (the agent's thread). One request
 * per connection; a client that sends no complete request within 10 s is dropped, and a frame over
 * {@link AgentWire#MAX_FRAME} closes the connection.
 */
public final class FramedAgentServer implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(FramedAgentServer.class);

  /** Answers one request; {@code reply} may be called from any thread, exactly once. */
  @FunctionalInterface
  public interface Handler {
    void handle(AgentWire.Request request, Consumer<AgentWire.Reply> reply);
  }

  private final Path socket;
  private final EventLoopGroup group;
  private final Channel server;
  private final @Nullable Object fileKey;

  private FramedAgentServer(
      Path socket, EventLoopGroup group, Channel server, @Nullable Object fileKey) {
    this.socket = socket;
    this.group = group;
    this.server = server;
    this.fileKey = fileKey;
  }

  /** Binds a temporary path beside {@code socket} and renames it over {@code socket}. */
  public static FramedAgentServer start(Path socket, Handler handler) throws IOException {
    Path dir = socket.toAbsolutePath().getParent();
    if (dir != null) {
      Files.createDirectories(dir);
    }
    Path fresh = socket.resolveSibling(socket.getFileName() + "." + ProcessHandle.current().pid());
    Files.deleteIfExists(fresh);
    EventLoopGroup group =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("nodemesh-agent-cni", true), EpollIoHandler.newFactory());
    try {
      Channel server =
          new ServerBootstrap()
              .group(group)
              .channel(EpollServerDomainSocketChannel.class)
              .childHandler(
                  new ChannelInitializer<Channel>() {
                    @Override
                    protected void initChannel(Channel ch) {
                      ch.pipeline()
                          .addLast("timeout", new ReadTimeoutHandler(10, TimeUnit.SECONDS))
                          .addLast(
                              new LengthFieldBasedFrameDecoder(AgentWire.MAX_FRAME, 0, 4, 0, 4))
                          .addLast(new OneRequest(handler));
                    }
                  })
              .bind(new DomainSocketAddress(fresh.toString()))
              .sync()
              .channel();
      Files.setPosixFilePermissions(fresh, PosixFilePermissions.fromString("rw-------"));
      Object key = Files.readAttributes(fresh, BasicFileAttributes.class).fileKey();
      Files.move(
          fresh, socket, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      return new FramedAgentServer(socket, group, server, key);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      throw new IOException("interrupted while binding " + fresh, e);
    } catch (IOException | RuntimeException e) {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      Files.deleteIfExists(fresh);
      throw e;
    }
  }

  public Path socket() {
    return socket;
  }

  @Override
  public void close() throws IOException {
    server.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    // Only our own socket: after an upgrade the path is the new proxy's.
    try {
      Object now = Files.readAttributes(socket, BasicFileAttributes.class).fileKey();
      if (fileKey != null && fileKey.equals(now)) {
        Files.deleteIfExists(socket);
      }
    } catch (NoSuchFileException gone) {
      // Removed already (an uninstall): nothing to do.
    }
  }

  /** Decodes the connection's one request, hands it on, writes the reply and closes. */
  private static final class OneRequest extends SimpleChannelInboundHandler<ByteBuf> {
    private final Handler handler;
    private boolean answered;

    OneRequest(Handler handler) {
      this.handler = handler;
    }

    @Override
    protected void channelRead0(ChannelHandlerContext ctx, ByteBuf frame) {
      if (answered) {
        return; // one request per connection; the reply is on its way and closes it
      }
      answered = true;
      // The enrolment may take longer than the read timeout: that covered the request only.
      ctx.pipeline().remove("timeout");
      ByteBuffer payload = ByteBuffer.allocate(frame.readableBytes());
      frame.readBytes(payload);
      AgentWire.Request request;
      try {
        request = AgentWire.decodeRequest(payload.flip());
      } catch (AgentWire.UnsupportedVersionException e) {
        reply(ctx, AgentWire.Reply.error("UNIMPLEMENTED", String.valueOf(e.getMessage())));
        return;
      } catch (AgentWire.MalformedException e) {
        reply(ctx, AgentWire.Reply.error("INVALID_ARGUMENT", String.valueOf(e.getMessage())));
        return;
      }
      handler.handle(request, r -> reply(ctx, r));
    }

    private static void reply(ChannelHandlerContext ctx, AgentWire.Reply reply) {
      ctx.writeAndFlush(Unpooled.wrappedBuffer(AgentWire.encode(reply)))
          .addListener(ChannelFutureListener.CLOSE);
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
      // A read timeout, an oversized frame or a reset: nothing to answer, nothing to keep.
      log.debug("agent framed connection: {}", cause.toString());
      ctx.close();
    }
  }
}
