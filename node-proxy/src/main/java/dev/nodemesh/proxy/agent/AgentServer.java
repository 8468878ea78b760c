package dev.nodemesh.proxy.agent;

import dev.nodemesh.model.cni.AgentWire;
import io.grpc.Server;
import io.grpc.netty.NettyServerBuilder;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.netty.channel.unix.DomainSocketAddress;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * Serves the node agent on a Unix socket, on its own event loop (never the data plane's), and the
 * same calls for the CNI plugin on the framed socket beside it ({@link FramedAgentServer}, {@code
 * <socket>.cni}). Both socket files are owner-only: only root (the CNI plugin, local mode) may
 * enrol pods.
 */
public final class AgentServer implements AutoCloseable {
  private final Path socket;
  private final Server server;
  private final EventLoopGroup group;
  private final @Nullable Object fileKey;
  private final FramedAgentServer framed;

  private AgentServer(
      Path socket,
      Server server,
      EventLoopGroup group,
      @Nullable Object fileKey,
      FramedAgentServer framed) {
    this.socket = socket;
    this.server = server;
    this.group = group;
    this.fileKey = fileKey;
    this.framed = framed;
  }

  /**
   * Binds a temporary path beside {@code socket} and renames it over {@code socket}: a CNI call
   * always finds a listening socket there, the old proxy's until the rename and this one's after,
   * which is how an upgrade (a new proxy beside the old) takes the agent over without a gap.
   */
  public static AgentServer start(Path socket, NodeAgentService service) throws IOException {
    Path dir = socket.toAbsolutePath().getParent();
    if (dir != null) {
      Files.createDirectories(dir);
    }
    Path fresh = socket.resolveSibling(socket.getFileName() + "." + ProcessHandle.current().pid());
    // Left by an earlier process with our PID (a container restart): ours to replace.
    Files.deleteIfExists(fresh);
    EventLoopGroup group =
        new MultiThreadIoEventLoopGroup(
            1, new DefaultThreadFactory("nodemesh-agent-grpc", true), EpollIoHandler.newFactory());
    Server server =
        NettyServerBuilder.forAddress(new DomainSocketAddress(fresh.toString()))
            .channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(group)
            .workerEventLoopGroup(group)
            .addService(service)
            .build()
            .start();
    Files.setPosixFilePermissions(fresh, PosixFilePermissions.fromString("rw-------"));
    Object key = Files.readAttributes(fresh, BasicFileAttributes.class).fileKey();
    // The framed socket first: a plugin that finds the new gRPC socket finds the new framed one.
    FramedAgentServer framed;
    try {
      framed = FramedAgentServer.start(AgentWire.socketFor(socket), service);
    } catch (IOException | RuntimeException e) {
      server.shutdownNow();
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
      Files.deleteIfExists(fresh);
      throw e;
    }
    Files.move(fresh, socket, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    return new AgentServer(socket, server, group, key, framed);
  }

  public Path socket() {
    return socket;
  }

  /**
   * True once the socket path is no longer this server's socket: a newer proxy (an upgrade) renamed
   * its own over it, so the CNI plugin now talks to that one. A stat per call.
   */
  public boolean superseded() {
    try {
      Object now = Files.readAttributes(socket, BasicFileAttributes.class).fileKey();
      return fileKey != null && !fileKey.equals(now);
    } catch (IOException gone) {
      return false; // removed (an uninstall, or our own close): nobody took over
    }
  }

  /** The CNI plugin's framed socket, beside {@link #socket()}. */
  public Path framedSocket() {
    return framed.socket();
  }

  @Override
  public void close() throws InterruptedException, IOException {
    framed.close();
    server.shutdown();
    if (!server.awaitTermination(5, TimeUnit.SECONDS)) {
      server.shutdownNow();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
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
}
