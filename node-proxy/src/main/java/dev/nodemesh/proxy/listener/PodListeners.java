package dev.nodemesh.proxy.listener;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
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
import io.netty.channel.socket.SocketChannel;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The proxy's listening sockets inside one pod's network namespace: outbound capture on
 * 127.0.0.1:15001, inbound capture on 0.0.0.0:15006 and, with HBONE on, the tunnel server on
 * 0.0.0.0:15008 (TLS; the redirect rules leave that port alone). The calling thread enters the
 * pod's namespace only while Netty constructs the channels (that is when the sockets are created);
 * binding and accepting then run on the event loops in the proxy's own namespace.
 */
public final class PodListeners implements AutoCloseable {
  private final List<Channel> channels;

  private PodListeners(List<Channel> channels) {
    this.channels = channels;
  }

  /** Opens both listeners for {@code pod}, or none: a failure closes whatever was opened. */
  public static PodListeners open(DataPlane plane, EnrolledPod pod) throws IOException {
    List<ChannelFuture> binds = new ArrayList<>();
    try (NetworkNamespace.Scope in = pod.netns().enter()) {
      binds.add(
          bootstrap(plane, pod, true)
              .bind(
                  new InetSocketAddress(
                      InetAddress.getLoopbackAddress(), NodeProxyConfig.OUTBOUND_PORT)));
      binds.add(
          bootstrap(plane, pod, false)
              .bind(new InetSocketAddress("0.0.0.0", NodeProxyConfig.INBOUND_PORT)));
      Tunnel tunnel = plane.tunnel();
      if (tunnel != null) {
        binds.add(
            bootstrap(plane, HboneServer.initializer(tunnel, plane, pod))
                .bind(new InetSocketAddress("0.0.0.0", NodeProxyConfig.HBONE_PORT)));
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
    PodListeners listeners = new PodListeners(opened);
    if (failure != null) {
      listeners.close();
      throw failure;
    }
    return listeners;
  }

  private static ServerBootstrap bootstrap(DataPlane plane, EnrolledPod pod, boolean outbound) {
    return bootstrap(
        plane,
        new ChannelInitializer<SocketChannel>() {
          @Override
          protected void initChannel(SocketChannel ch) {
            EpollRegistrationGuard.apply(ch);
            ch.pipeline()
                .addLast(
                    "connect",
                    outbound
                        ? new OutboundConnectHandler(plane, pod)
                        : new InboundConnectHandler(plane, pod));
          }
        });
  }

  private static ServerBootstrap bootstrap(DataPlane plane, ChannelHandler childHandler) {
    return new ServerBootstrap()
        .group(plane.acceptGroup(), plane.workerGroup())
        .channelFactory(plane.transport().serverChannels())
        .option(ChannelOption.SO_REUSEADDR, true)
        .option(ChannelOption.SO_BACKLOG, 1024)
        .childOption(ChannelOption.AUTO_READ, false)
        .childOption(ChannelOption.TCP_NODELAY, true)
        .childOption(ChannelOption.ALLOW_HALF_CLOSURE, true)
        .childHandler(childHandler);
  }

  /** The inbound plaintext listener (0.0.0.0:15006 in the pod). */
  public Channel inbound() {
    return channels.get(1);
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
