package dev.nodemesh.proxy.upstream;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.socket.SocketOptions;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.budget.UpstreamBudgetExceeded;
import dev.nodemesh.proxy.transport.Transport;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.bootstrap.Bootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Opens the proxy's TCP connections from inside a given pod's network namespace, on the downstream
 * channel's event loop: the {@link UpstreamPath.Direct} and {@link UpstreamPath.SameNode} paths,
 * local delivery of inbound and HBONE traffic, and the tunnel's own sockets. Every socket carries
 * the proxy mark, so the pod's own redirect rules do not send it back to the proxy, and allows
 * half-closure (for relays; a user that does not want it turns it off).
 *
 * <p>Delivery to an app inside its pod can come from the caller's address: the socket gets {@code
 * IP_TRANSPARENT} / {@code IPV6_TRANSPARENT} (the proxy has CAP_NET_ADMIN), is bound to the
 * loopback device and to that address, port picked at connect, so the app's {@code accept()} sees
 * the client pod (or the plaintext client) rather than its own address, over IPv4 and IPv6 alike.
 * The pod's {@code CallerAddressRouting}, installed at enrolment in both interception modes for
 * each family the pod has, routes this socket's packets over {@code lo} (so eBPF mode's sk_lookup
 * program leaves the delivery alone instead of capturing it again) and the app's replies back to
 * the socket. If the option or the bind fails, the connection is made as before, from the pod's own
 * address: counted in {@code nodemesh_caller_address_fallbacks_total}, logged once at WARN and then
 * at debug.
 *
 * <p>The event-loop thread enters the namespace only while Netty constructs the channel (one setns
 * each way, a few microseconds); the bind and connect run after the thread is home again.
 *
 * <p>Every socket is first claimed against the upstream budget of the pod whose connection it is
 * made for ({@link PodBudgets#claimUpstream}) and given back when it closes; over that budget no
 * socket is made and the dial fails with {@link UpstreamBudgetExceeded}.
 */
public final class DirectDialer implements Dialer {
  private static final Logger log = LoggerFactory.getLogger(DirectDialer.class);
  private static final int CONNECT_TIMEOUT_MILLIS = 10_000;

  private final Transport transport;
  private final int proxyMark;
  private final PodBudgets budgets;
  private final Counter fallbacks;
  private final AtomicBoolean fallbackLogged = new AtomicBoolean();
  private final CallerBinding binding;

  /** Readies a new socket to be bound to a caller's address (a seam for the fallback's test). */
  @FunctionalInterface
  interface CallerBinding {
    void prepare(int fd, boolean ipv6) throws NativeException;
  }

  /**
   * @param budgets the pods' upstream budgets every socket is claimed against
   * @param registry where the fallbacks from the caller's address are counted
   */
  public DirectDialer(
      Transport transport, int proxyMark, PodBudgets budgets, MeterRegistry registry) {
    this(
        transport,
        proxyMark,
        budgets,
        registry,
        (fd, ipv6) -> {
          SocketOptions.setTransparent(fd, ipv6);
          SocketOptions.bindToLoopback(fd);
        });
  }

  DirectDialer(
      Transport transport,
      int proxyMark,
      PodBudgets budgets,
      MeterRegistry registry,
      CallerBinding binding) {
    this.transport = transport;
    this.proxyMark = proxyMark;
    this.budgets = budgets;
    this.binding = binding;
    this.fallbacks =
        Counter.builder("nodemesh_caller_address_fallbacks_total")
            .description(
                "Deliveries to an app made from the pod's own address because binding the"
                    + " caller's address failed")
            .register(registry);
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
    connect(
            downstream,
            path.from(),
            path.target(),
            path instanceof UpstreamPath.SameNode s ? s.caller() : null)
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
   * Connects from {@code from}'s namespace to {@code to}, from the socket's own address. A failed
   * future's channel is {@code downstream} itself when no socket could be made, so callers close it
   * only when it is not.
   */
  public ChannelFuture connect(Channel downstream, NetworkNamespace from, InetSocketAddress to) {
    return connect(downstream, from, to, null);
  }

  /**
   * As above, from {@code caller}'s address when it is not null (see the class comment): for
   * delivery to an app inside {@code from}, a namespace enrolled with its caller-address routing
   * for {@code to}'s family. A caller that is loopback, IPv6 link-local, the target's own address,
   * or of another family than {@code to}, is not bound.
   */
  public ChannelFuture connect(
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      @Nullable InetAddress caller) {
    ChannelFuture registered = open(downstream, from, to);
    if (registered.channel() == downstream || registered.cause() != null) {
      return registered;
    }
    Channel ch = registered.channel();
    // An IPv6 link-local caller would need a scope its address does not carry here; the pod's own
    // address serves such a (rare) caller as before. A pod reaching itself (its own Service, or its
    // own address in eBPF mode) is not bound either: bound with IP_TRANSPARENT to the target's own
    // address, the connect timed out; the app sees its own address as the caller all the same.
    if (caller == null
        || caller.isLoopbackAddress()
        || caller.equals(to.getAddress())
        || (caller instanceof Inet6Address && caller.isLinkLocalAddress())
        || (caller instanceof Inet4Address) != (to.getAddress() instanceof Inet4Address)) {
      return ch.connect(to);
    }
    try {
      binding.prepare(Transport.fd(ch), caller instanceof Inet6Address);
    } catch (NativeException | RuntimeException e) {
      return fallBack(downstream, from, to, ch, caller, e);
    }
    // Bound inline: the channel is registered on this loop and bind() runs at once.
    ChannelFuture bound = ch.bind(new InetSocketAddress(caller, 0));
    if (bound.isDone()) {
      return bound.isSuccess()
          ? ch.connect(to)
          : fallBack(downstream, from, to, ch, caller, bound.cause());
    }
    // Not seen with epoll, io_uring or NIO on the channel's loop; if it happens, no fallback.
    ChannelPromise done = ch.newPromise();
    bound.addListener(
        (ChannelFutureListener)
            f -> {
              if (f.isSuccess()) {
                ch.connect(to, done);
              } else {
                done.setFailure(f.cause());
              }
            });
    return done;
  }

  /** The caller's address could not be bound: count, say so once, and connect as before. */
  private ChannelFuture fallBack(
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      Channel failed,
      InetAddress caller,
      Throwable cause) {
    failed.close();
    fallbacks.increment();
    if (fallbackLogged.compareAndSet(false, true)) {
      log.warn(
          "cannot connect to {} from the caller's address {} ({}); connecting from the pod's own"
              + " address instead (counted in nodemesh_caller_address_fallbacks_total, further"
              + " cases logged at debug)",
          to,
          caller.getHostAddress(),
          cause.toString());
    } else {
      log.debug(
          "connecting to {} from {} failed: {}", to, caller.getHostAddress(), cause.toString());
    }
    return connect(downstream, from, to, null);
  }

  /**
   * A registered channel made in {@code from}'s namespace, or a failed future whose channel is
   * {@code downstream} (no socket) or the closed new one.
   */
  private ChannelFuture open(Channel downstream, NetworkNamespace from, InetSocketAddress to) {
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
            // TCP_NODELAY: already on from the channel's construction (Transport.clientChannels).
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
    return registered;
  }
}
