package dev.nodemesh.proxy.l4;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.transport.EpollRegistrationGuard;
import dev.nodemesh.proxy.transport.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import java.net.InetSocketAddress;

/**
 * Opens the proxy's upstream connection from inside a given pod's network namespace, on the
 * downstream channel's event loop. The socket carries the proxy mark, so the pod's own redirect
 * rules do not send it back to the proxy.
 *
 * <p>The event-loop thread enters the namespace only while Netty constructs the channel (one setns
 * each way, a few microseconds); the connect itself runs after the thread is home again.
 */
public final class Upstream {
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  private Upstream() {}

  public static ChannelFuture connect(
      DataPlane plane, Channel downstream, NetworkNamespace from, InetSocketAddress to) {
    Bootstrap b =
        new Bootstrap()
            .group(downstream.eventLoop())
            .channelFactory(
                plane
                    .transport()
                    .clientChannels(plane.proxyMark(), Transport.familyOf(to.getAddress())))
            .option(ChannelOption.AUTO_READ, false)
            .option(ChannelOption.TCP_NODELAY, true)
            .option(ChannelOption.ALLOW_HALF_CLOSURE, true)
            .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, CONNECT_TIMEOUT_MILLIS)
            .handler(new ChannelInboundHandlerAdapter());
    ChannelFuture registered;
    try (NetworkNamespace.Scope in = from.enter()) {
      // register() runs inline here (we are on the event loop), so the channel is created now.
      registered = b.register();
    } catch (NativeException e) {
      return downstream.newFailedFuture(e);
    }
    if (registered.cause() != null) {
      // The socket could not be made (e.g. marking it failed): fail now, never hang the client.
      registered.channel().close();
      return downstream.newFailedFuture(registered.cause());
    }
    EpollRegistrationGuard.apply(registered.channel());
    return registered.channel().connect(to);
  }
}
