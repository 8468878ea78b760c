package dev.nodemesh.proxy.upstream;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.budget.UpstreamBudgetExceeded;
import dev.nodemesh.proxy.transport.EpollRegistrationGuard;
import dev.nodemesh.proxy.transport.Transport;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetSocketAddress;

/**
 * Opens the proxy's TCP connections from inside a given pod's network namespace, on the downstream
 * channel's event loop: the {@link UpstreamPath.Direct} and {@link UpstreamPath.SameNode} paths,
 * local delivery of inbound and HBONE traffic, and the tunnel's own sockets. Every socket carries
 * the proxy mark, so the pod's own redirect rules do not send it back to the proxy, and allows
 * half-closure (for relays; a user that does not want it turns it off).
 *
 * <p>The event-loop thread enters the namespace only while Netty constructs the channel (one setns
 * each way, a few microseconds); the connect itself runs after the thread is home again.
 *
 * <p>Every socket is first claimed against the upstream budget of the pod whose connection it is
 * made for ({@link PodBudgets#claimUpstream}) and given back when it closes; over that budget no
 * socket is made and the dial fails with {@link UpstreamBudgetExceeded}.
 */
public final class DirectDialer implements Dialer {
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  private final Transport transport;
  private final int proxyMark;
  private final PodBudgets budgets;

  public DirectDialer(Transport transport, int proxyMark, PodBudgets budgets) {
    this.transport = transport;
    this.proxyMark = proxyMark;
    this.budgets = budgets;
  }

  /**
   * A socket to {@code path}'s target made in its namespace. Fails for a path that is not a socket.
   */
  @Override
  public Future<Channel> dial(Channel downstream, UpstreamPath path) {
    Promise<Channel> p = downstream.eventLoop().newPromise();
    if (!(path instanceof UpstreamPath.Direct || path instanceof UpstreamPath.SameNode)) {
      return p.setFailure(new IllegalArgumentException("not a direct path: " + path));
    }
    connect(downstream, path.from(), path.target())
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess()) {
                    if (f.channel() != downstream) {
                      f.channel().close();
                    }
                    p.setFailure(f.cause());
                    return;
                  }
                  p.setSuccess(f.channel());
                });
    return p;
  }

  /**
   * Connects from {@code from}'s namespace to {@code to}. A failed future's channel is {@code
   * downstream} itself when no socket could be made, so callers close it only when it is not.
   */
  public ChannelFuture connect(Channel downstream, NetworkNamespace from, InetSocketAddress to) {
    Runnable claim = budgets.claimUpstream(downstream);
    if (claim == null) {
      return downstream.newFailedFuture(new UpstreamBudgetExceeded());
    }
    Bootstrap b =
        new Bootstrap()
            .group(downstream.eventLoop())
            .channelFactory(
                transport.clientChannels(proxyMark, Transport.familyOf(to.getAddress())))
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
      claim.run();
      return downstream.newFailedFuture(e);
    } catch (RuntimeException e) {
      claim.run();
      throw e;
    }
    if (registered.cause() != null) {
      // The socket could not be made (e.g. marking it failed): fail now, never hang the client.
      claim.run();
      registered.channel().close();
      return downstream.newFailedFuture(registered.cause());
    }
    registered.channel().closeFuture().addListener(f -> claim.run());
    EpollRegistrationGuard.apply(registered.channel());
    return registered.channel().connect(to);
  }
}
