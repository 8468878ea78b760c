package dev.nodemesh.proxy.transport;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.socket.SocketOptions;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.IoHandlerFactory;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.ServerChannel;
import io.netty.channel.epoll.Epoll;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import io.netty.channel.epoll.EpollSocketChannel;
import io.netty.channel.nio.NioIoHandler;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.channel.unix.UnixChannel;
import io.netty.channel.uring.IoUring;
import io.netty.channel.uring.IoUringIoHandler;
import io.netty.channel.uring.IoUringServerSocketChannel;
import io.netty.channel.uring.IoUringSocketChannel;
import io.netty.util.ResourceLeakDetector;
import java.io.FileDescriptor;
import java.lang.reflect.Field;
import java.util.concurrent.ThreadFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One Netty transport (epoll, io_uring or NIO): its event loops, and factories for the proxy's
 * sockets. Channels are constructed by the calling thread, which is what puts a socket into a pod's
 * network namespace: the caller enters the namespace, asks for a channel, and leaves.
 *
 * <p>NIO exposes no file descriptor, so there the fd is read by reflection (needs {@code
 * --add-opens java.base/sun.nio.ch=ALL-UNNAMED}, which the launcher passes).
 */
public final class Transport {
  private static final Logger log = LoggerFactory.getLogger(Transport.class);

  private final TransportKind kind;

  private Transport(TransportKind kind) {
    this.kind = kind;
  }

  /** The requested transport, or a clear error saying why it cannot run here. */
  public static Transport of(TransportKind kind) {
    switch (kind) {
      case EPOLL -> {
        if (!Epoll.isAvailable()) {
          throw new IllegalStateException("epoll unavailable", Epoll.unavailabilityCause());
        }
      }
      case IO_URING -> {
        if (!IoUring.isAvailable()) {
          throw new IllegalStateException("io_uring unavailable", IoUring.unavailabilityCause());
        }
      }
      case NIO -> {}
    }
    return new Transport(kind);
  }

  public TransportKind kind() {
    return kind;
  }

  public EventLoopGroup newGroup(int threads, ThreadFactory threadFactory) {
    IoHandlerFactory handler =
        switch (kind) {
          case EPOLL -> EpollIoHandler.newFactory();
          case IO_URING -> IoUringIoHandler.newFactory();
          case NIO -> NioIoHandler.newFactory();
        };
    return new MultiThreadIoEventLoopGroup(threads, threadFactory, handler);
  }

  /** Listening sockets, IPv4, created on the calling thread (so in its network namespace). */
  public ChannelFactory<ServerChannel> serverChannels() {
    return serverChannels(SocketProtocolFamily.INET);
  }

  /**
   * Listening sockets of {@code family}, created on the calling thread. IPv6 ones are IPv6 only
   * ({@code IPV6_V6ONLY}): the proxy binds [::]:port next to 0.0.0.0:port, and a dual-stack socket
   * would clash with the IPv4 one. io_uring has no family argument; its sockets are AF_INET6 when
   * the kernel has IPv6, and IPv4 addresses are bound v4-mapped, so they serve IPv4 as before.
   */
  public ChannelFactory<ServerChannel> serverChannels(SocketProtocolFamily family) {
    boolean v6 = family == SocketProtocolFamily.INET6;
    return () -> {
      ServerChannel ch =
          switch (kind) {
            case EPOLL -> new EpollServerSocketChannel(family);
            case IO_URING -> new IoUringServerSocketChannel();
            case NIO ->
                new NioServerSocketChannel(
                    java.nio.channels.spi.SelectorProvider.provider(), family);
          };
      if (v6) {
        try {
          SocketOptions.setIpv6Only(fd(ch));
        } catch (NativeException e) {
          ch.unsafe().closeForcibly();
          throw new IllegalStateException("cannot make the proxy's listener IPv6-only", e);
        }
      }
      return ch;
    };
  }

  /** The family of sockets that can reach {@code address}. */
  public static SocketProtocolFamily familyOf(java.net.InetAddress address) {
    return address instanceof java.net.Inet6Address
        ? SocketProtocolFamily.INET6
        : SocketProtocolFamily.INET;
  }

  /**
   * Upstream sockets carrying {@code mark} (so the pod's redirect rules let them through), created
   * on the calling thread. A mark of 0 leaves the socket unmarked. Every transport's socket config
   * turns TCP_NODELAY on when it is made (Netty's default on Linux), so callers need not set it
   * again (one setsockopt per socket saved; {@code DirectDialerTest} checks it stays on).
   */
  public ChannelFactory<SocketChannel> clientChannels(int mark) {
    return clientChannels(mark, SocketProtocolFamily.INET);
  }

  /** {@link #clientChannels(int)} for destinations of {@code family} (see {@link #familyOf}). */
  public ChannelFactory<SocketChannel> clientChannels(int mark, SocketProtocolFamily family) {
    return () -> {
      SocketChannel ch =
          switch (kind) {
            case EPOLL -> new EpollSocketChannel(family);
            case IO_URING -> new IoUringSocketChannel();
            case NIO ->
                new NioSocketChannel(java.nio.channels.spi.SelectorProvider.provider(), family);
          };
      if (mark != 0) {
        try {
          SocketOptions.setMark(fd(ch), mark);
        } catch (NativeException e) {
          ch.unsafe().closeForcibly();
          throw new IllegalStateException("cannot mark the proxy's upstream socket", e);
        }
      }
      // Not registered yet: the flag joins the registration's own epoll_ctl.
      EpollRegistrationGuard.apply(ch);
      return ch;
    };
  }

  /** The kernel file descriptor behind a channel of this transport. */
  public static int fd(Channel ch) {
    if (ch instanceof UnixChannel u) {
      return u.fd().intValue();
    }
    if (ch instanceof NioSocketChannel || ch instanceof NioServerSocketChannel) {
      return NioFd.of(ch);
    }
    throw new IllegalArgumentException("no file descriptor for " + ch.getClass().getName());
  }

  /**
   * Turns Netty's buffer leak detector off for a running proxy unless the operator chose a level
   * ({@code -Dio.netty.leakDetection.level}, as the test build does: paranoid). Netty's default
   * level samples one buffer in 128 and records a stack trace for it: under bulk tunnel traffic a
   * proxy filled about two stack traces per MB moved (seen in a JFR exception profile), with a
   * leak-aware wrapper around each sampled buffer, for reports nobody reads in production.
   */
  public static void productionLeakDetection() {
    if (System.getProperty("io.netty.leakDetection.level") == null
        && System.getProperty("io.netty.leakDetectionLevel") == null) {
      ResourceLeakDetector.setLevel(ResourceLeakDetector.Level.DISABLED);
    }
  }

  public void logChoice() {
    log.info("transport: {}", kind.name().toLowerCase(java.util.Locale.ROOT));
  }

  /** Reads the fd of an NIO channel through the JDK's private fields. */
  private static final class NioFd {
    private NioFd() {}

    static int of(Channel ch) {
      try {
        Object jdkChannel;
        java.lang.reflect.Method javaChannel =
            io.netty.channel.nio.AbstractNioChannel.class.getDeclaredMethod("javaChannel");
        javaChannel.setAccessible(true);
        jdkChannel = javaChannel.invoke(ch);
        Field fdField = jdkChannel.getClass().getDeclaredField("fd");
        fdField.setAccessible(true);
        FileDescriptor fd = (FileDescriptor) fdField.get(jdkChannel);
        Field fdVal = FileDescriptor.class.getDeclaredField("fd");
        fdVal.setAccessible(true);
        return fdVal.getInt(fd);
      } catch (ReflectiveOperationException | RuntimeException e) {
        throw new IllegalStateException(
            "cannot read the fd of an NIO channel; run with --add-opens"
                + " java.base/sun.nio.ch=ALL-UNNAMED --add-opens java.base/java.io=ALL-UNNAMED",
            e);
      }
    }
  }
}
