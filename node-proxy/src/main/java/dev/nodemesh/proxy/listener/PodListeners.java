package dev.nodemesh.proxy.listener;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.budget.AcceptGuard;
import dev.nodemesh.proxy.budget.Direction;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.inbound.InboundConnectHandler;
import dev.nodemesh.proxy.outbound.OutboundConnectHandler;
import dev.nodemesh.proxy.transport.EpollRegistrationGuard;
import dev.nodemesh.proxy.tunnel.HboneServer;
import dev.nodemesh.proxy.tunnel.Tunnel;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelOption;
import io.netty.channel.epoll.EpollChannelOption;
import io.netty.channel.socket.SocketChannel;
import io.netty.channel.socket.SocketProtocolFamily;
import io.netty.channel.uring.IoUringChannelOption;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;

/**
 * The proxy's listening sockets inside one pod's network namespace: outbound capture on
 * 127.0.0.1:15001, inbound capture on 0.0.0.0:15006 and, with HBONE on, the tunnel server on
 * 0.0.0.0:15008 (TLS; the redirect rules leave that port alone). A pod with an IPv6 address gets
 * the same three again as IPv6-only sockets on [::1]:15001, [::]:15006 and [::]:15008, where its
 * native IPv6 traffic is redirected to. The calling thread enters the pod's namespace only while
 * Netty constructs the channels (that is when the sockets are created); binding and accepting then
 * run on the event loops in the proxy's own namespace.
 *
 * <p>Each accepted connection counts against its pod's budget ({@link PodBudgets}): outbound on
 * 15001, inbound on 15006 and 15008; past it the connection is reset at once.
 */
public final class PodListeners implements AutoCloseable {
  private static final int INBOUND = 1;

  private final List<Channel> channels;
  private final int inbound6;

  private PodListeners(List<Channel> channels, int inbound6) {
    this.channels = channels;
    this.inbound6 = inbound6;
  }

  /** Opens every listener for {@code pod}, or none: a failure closes whatever was opened. */
  public static PodListeners open(DataPlane plane, EnrolledPod pod) throws IOException {
    List<ChannelFuture> binds = new ArrayList<>();
    int inbound6 = -1;
    try (NetworkNamespace.Scope in = pod.netns().enter()) {
      AcceptQueueMigration.enable();
      // Keep this order: inbound() is channels[INBOUND].
      bindAll(plane, pod, SocketProtocolFamily.INET, binds);
      if (pod.hasIpv6()) {
        inbound6 = binds.size() + INBOUND;
        bindAll(plane, pod, SocketProtocolFamily.INET6, binds);
      }
    }
    List<Channel> opened = new ArrayList<>();
    IOException failure = null;
    for (ChannelFuture f : binds) {
      if (!f.awaitUninterruptibly(10, TimeUnit.SECONDS)) {
        failure = new IOException("timed out binding a listener in " + pod.netnsPath());
      } else if (!f.isSuccess()) {
        failure =
            new IOException(
                "cannot listen in " + pod.netnsPath() + ": " + f.cause().getMessage(), f.cause());
      }
      opened.add(f.channel());
    }
    PodListeners listeners = new PodListeners(opened, inbound6);
    if (failure != null) {
      listeners.close();
      plane.budgets().release(pod);
      throw failure;
    }
    return listeners;
  }

  /** Outbound, inbound and (with HBONE) tunnel listeners of one family, in that order. */
  private static void bindAll(
      DataPlane plane, EnrolledPod pod, SocketProtocolFamily family, List<ChannelFuture> binds) {
    boolean v6 = family == SocketProtocolFamily.INET6;
    InetAddress loopback = v6 ? LOOPBACK6 : InetAddress.getLoopbackAddress();
    InetAddress any = v6 ? ANY6 : ANY4;
    binds.add(
        bootstrap(plane, pod, true, family)
            .bind(new InetSocketAddress(loopback, NodeProxyConfig.OUTBOUND_PORT)));
    binds.add(
        bootstrap(plane, pod, false, family)
            .bind(new InetSocketAddress(any, NodeProxyConfig.INBOUND_PORT)));
    Tunnel tunnel = plane.tunnel();
    if (tunnel != null) {
      binds.add(
          bootstrap(
                  plane,
                  HboneServer.initializer(tunnel, hboneContext(plane), pod),
                  family,
                  plane.budgets().of(pod),
                  Direction.INBOUND)
              .bind(new InetSocketAddress(any, NodeProxyConfig.HBONE_PORT)));
    }
  }

  private static HboneServer.Context hboneContext(DataPlane plane) {
    return new HboneServer.Context(
        plane.snapshots(),
        plane.metrics(),
        plane.accessLog(),
        plane.upstreams().direct(),
        plane.paths(),
        plane.admissions());
  }

  private static final InetAddress ANY4 = address(new byte[4]);
  private static final InetAddress ANY6 = address(new byte[16]);
  private static final InetAddress LOOPBACK6 =
      address(new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1});

  private static InetAddress address(byte[] raw) {
    try {
      return InetAddress.getByAddress(raw);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }

  private static ServerBootstrap bootstrap(
      DataPlane plane, EnrolledPod pod, boolean outbound, SocketProtocolFamily family) {
    return bootstrap(
        plane,
        new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            ch.pipeline()
                .addLast(
                    "connect",
                    outbound
                        ? new OutboundConnectHandler(plane, pod)
                        : new InboundConnectHandler(plane, pod));
          }
        },
        family,
        plane.budgets().of(pod),
        outbound ? Direction.OUTBOUND : Direction.INBOUND);
  }

  /**
   * A listener whose accepted connections count against {@code budget} in {@code direction}: one
   * past it is reset on the accept thread, before it is registered with an I/O loop, and the
   * listener's accept errors go to {@link AcceptGuard} first (fd exhaustion pauses this listener
   * only, briefly).
   */
  private static ServerBootstrap bootstrap(
      DataPlane plane,
      ChannelHandler childHandler,
      SocketProtocolFamily family,
      PodBudgets.PodBudget budget,
      Direction direction) {
    ServerBootstrap b =
        new ServerBootstrap()
            .group(plane.acceptGroup(), plane.workerGroup())
            .channelFactory(plane.transport().serverChannels(family))
            .handler(
                new ChannelInitializer<Channel>() {
                  @Override
                  protected void initChannel(Channel listener) {
                    // Both see each accepted channel before the acceptor registers it: the guard's
                    // flag then needs no epoll_ctl of its own.
                    listener
                        .pipeline()
                        .addLast(
                            new AcceptGuard(budget, direction), EpollRegistrationGuard.ON_ACCEPT);
                  }
                })
            .option(ChannelOption.SO_REUSEADDR, true);
    // SO_REUSEPORT, so that a new proxy process (an upgrade) can bind the same ports in the pod
    // beside this one's listeners before this one stops accepting. Both processes run as the same
    // user, which the kernel requires for sharing. NIO (a fallback for tests) does without.
    switch (plane.transport().kind()) {
      case EPOLL -> b.option(EpollChannelOption.SO_REUSEPORT, true);
      case IO_URING -> b.option(IoUringChannelOption.SO_REUSEPORT, true);
      case NIO -> {}
    }
    return b.option(ChannelOption.SO_BACKLOG, 1024)
        .childOption(ChannelOption.AUTO_READ, false)
        // TCP_NODELAY: every transport's accepted channel turns it on when it is made.
        .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
        .childHandler(
            new ChannelInitializer<SocketChannel>() {
              @Override
              protected void initChannel(SocketChannel ch) {
                // Admitted against the budget already, on the accept thread (AcceptGuard).
                plane.downstreams().track(ch);
                ch.pipeline().addLast(childHandler);
              }
            });
  }

  /** The inbound plaintext listener (0.0.0.0:15006 in the pod). */
  public Channel inbound() {
    return channels.get(INBOUND);
  }

  /** The IPv6 inbound plaintext listener ([::]:15006), or null when the pod has no IPv6 address. */
  public @Nullable Channel inbound6() {
    return inbound6 < 0 ? null : channels.get(inbound6);
  }

  /** Local addresses the listeners are bound to (for logs and tests). */
  public List<String> describe() {
    return channels.stream().map(c -> String.valueOf(c.localAddress())).toList();
  }

  @Override
  public void close() {
    for (Channel c : channels) {
      c.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
  }
}
