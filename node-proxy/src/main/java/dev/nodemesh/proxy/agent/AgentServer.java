package dev.nodemesh.proxy.agent;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;

/**
 * Serves the node agent on a Unix socket, on its own event loop (never the data plane's). The
 * socket file is owner-only: only root (the CNI plugin, local mode) may enrol pods.
 */
public final class AgentServer implements AutoCloseable {
  private final Path socket;
  private final Server server;
  private final EventLoopGroup group;

  private AgentServer(Path socket, Server server, EventLoopGroup group) {
    this.socket = socket;
    this.server = server;
    this.group = group;
  }

  public static AgentServer start(Path socket, NodeAgentService service) throws IOException {
    Path dir = socket.toAbsolutePath().getParent();
    if (dir != null) {
      Files.createDirectories(dir);
    }
    // A socket file left by a previous run would make bind fail; it is ours to replace.
    Files.deleteIfExists(socket);
    EventLoopGroup group = new EpollEventLoopGroup(1);
    Server server =
        NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
            .channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(group)
            .workerEventLoopGroup(group)
            .addService(service)
            .build()
            .start();
    Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
    return new AgentServer(socket, server, group);
  }

  public Path socket() {
    return socket;
  }

  @Override
  public void close() throws InterruptedException, IOException {
    server.shutdown();
    if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
      server.shutdownNow();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
    Files.deleteIfExists(socket);
  }
}
