package dev.nodemesh.proxy.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.transport.TransportKind;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.socket.nio.NioSocketChannel;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The fallback of delivery from the caller's address: when the socket cannot take the caller's
 * address, the connection is made as before (from the socket's own address), and counted. Runs in
 * this process's own namespace against a loopback server; the failure is injected, so no
 * transparent socket is ever made here.
 */
class DirectDialerTest {
  private static final int EPERM = 1;

  @Test
  void aFailedTransparentBindConnectsFromTheOwnAddressAndIsCounted() throws Exception {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AtomicInteger tried = new AtomicInteger();
    Transport transport = Transport.of(TransportKind.NIO);
    EventLoopGroup group = transport.newGroup(1, r -> new Thread(r, "dialer-test"));
    try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
      DirectDialer dialer =
          new DirectDialer(
              transport,
              0,
              new dev.nodemesh.proxy.budget.PodBudgets(100, 100, registry),
              registry,
              (fd, ipv6) -> {
                tried.incrementAndGet();
                throw new NativeException("setsockopt", "IP_TRANSPARENT", EPERM);
              });
      InetSocketAddress to =
          new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort());
      for (int i = 1; i <= 2; i++) {
        Channel downstream = new NioSocketChannel();
        group.register(downstream).sync();
        ChannelFuture f =
            group
                .next()
                .submit(
                    () ->
                        dialer.connect(
                            downstream,
                            NetworkNamespace.home(),
                            to,
                            InetAddress.getByName("10.213.7.7")))
                .get(10, TimeUnit.SECONDS);
        assertTrue(f.await(10, TimeUnit.SECONDS) && f.isSuccess(), String.valueOf(f.cause()));
        try (Socket accepted = server.accept()) {
          // From the socket's own address, as before.
          assertEquals(InetAddress.getLoopbackAddress(), accepted.getInetAddress());
        }
        f.channel().close().sync();
        downstream.close().sync();
        assertEquals(i, tried.get());
        assertEquals(i, registry.get("nodemesh_caller_address_fallbacks_total").counter().count());
      }
    } finally {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  @Test
  void anIpv6CallerOfAnIpv6TargetIsBoundAsIpv6AndALinkLocalOrIpv4OneIsNot() throws Exception {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AtomicInteger v6 = new AtomicInteger();
    AtomicInteger v4 = new AtomicInteger();
    Transport transport = Transport.of(TransportKind.NIO);
    EventLoopGroup group = transport.newGroup(1, r -> new Thread(r, "dialer-test"));
    InetAddress ipv6Loopback = InetAddress.getByName("::1");
    try (ServerSocket server = new ServerSocket(0, 8, ipv6Loopback)) {
      DirectDialer dialer =
          new DirectDialer(
              transport,
              0,
              new dev.nodemesh.proxy.budget.PodBudgets(100, 100, registry),
              registry,
              (fd, ipv6) -> {
                (ipv6 ? v6 : v4).incrementAndGet();
                // No transparent socket here: fail, so the connection falls back.
                throw new NativeException("setsockopt", "IPV6_TRANSPARENT", EPERM);
              });
      InetSocketAddress to = new InetSocketAddress(ipv6Loopback, server.getLocalPort());
      for (InetAddress caller :
          new InetAddress[] {
            InetAddress.getByName("fd00::7"),
            InetAddress.getByName("fe80::7"),
            InetAddress.getByName("10.213.7.7")
          }) {
        Channel downstream = new NioSocketChannel();
        group.register(downstream).sync();
        ChannelFuture f =
            group
                .next()
                .submit(() -> dialer.connect(downstream, NetworkNamespace.home(), to, caller))
                .get(10, TimeUnit.SECONDS);
        assertTrue(f.await(10, TimeUnit.SECONDS) && f.isSuccess(), String.valueOf(f.cause()));
        try (Socket accepted = server.accept()) {
          assertEquals(ipv6Loopback, accepted.getInetAddress());
        }
        f.channel().close().sync();
        downstream.close().sync();
      }
      // Only the global IPv6 caller was tried, as IPv6; it fell back and was counted.
      assertEquals(1, v6.get());
      assertEquals(0, v4.get());
      assertEquals(1.0, registry.get("nodemesh_caller_address_fallbacks_total").counter().count());
    } finally {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  @Test
  void noCallerOrAnotherFamilyOrLoopbackBindsNothing() throws Exception {
    SimpleMeterRegistry registry = new SimpleMeterRegistry();
    AtomicInteger tried = new AtomicInteger();
    Transport transport = Transport.of(TransportKind.NIO);
    EventLoopGroup group = transport.newGroup(1, r -> new Thread(r, "dialer-test"));
    try (ServerSocket server = new ServerSocket(0, 8, InetAddress.getLoopbackAddress())) {
      DirectDialer dialer =
          new DirectDialer(
              transport,
              0,
              new dev.nodemesh.proxy.budget.PodBudgets(100, 100, registry),
              registry,
              (fd, ipv6) -> tried.incrementAndGet());
      InetSocketAddress to =
          new InetSocketAddress(InetAddress.getLoopbackAddress(), server.getLocalPort());
      for (InetAddress caller :
          new InetAddress[] {
            null, InetAddress.getByName("fd00::7"), InetAddress.getByName("127.0.0.2")
          }) {
        Channel downstream = new NioSocketChannel();
        group.register(downstream).sync();
        ChannelFuture f =
            group
                .next()
                .submit(() -> dialer.connect(downstream, NetworkNamespace.home(), to, caller))
                .get(10, TimeUnit.SECONDS);
        assertTrue(f.await(10, TimeUnit.SECONDS) && f.isSuccess(), String.valueOf(f.cause()));
        server.accept().close();
        f.channel().close().sync();
        downstream.close().sync();
      }
      assertEquals(0, tried.get());
      assertEquals(0.0, registry.get("nodemesh_caller_address_fallbacks_total").counter().count());
    } finally {
      group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  /**
   * The dialer and the pod listeners no longer set TCP_NODELAY themselves (one setsockopt per
   * socket): every transport's socket config turns it on when the channel is made. Checked on both
   * ends of a connection, dialled and accepted, so a Netty that changed that default fails here.
   */
  @Test
  void socketsMadeByTheTransportHaveNagleOff() throws Exception {
    for (TransportKind kind : new TransportKind[] {TransportKind.EPOLL, TransportKind.NIO}) {
      SimpleMeterRegistry registry = new SimpleMeterRegistry();
      Transport transport = Transport.of(kind);
      EventLoopGroup group = transport.newGroup(1, r -> new Thread(r, "dialer-test"));
      java.util.concurrent.CompletableFuture<Boolean> acceptedNoDelay =
          new java.util.concurrent.CompletableFuture<>();
      try {
        Channel listener =
            new io.netty.bootstrap.ServerBootstrap()
                .group(group)
                .channelFactory(transport.serverChannels())
                .childHandler(
                    new io.netty.channel.ChannelInboundHandlerAdapter() {
                      @Override
                      public void channelActive(io.netty.channel.ChannelHandlerContext ctx) {
                        acceptedNoDelay.complete(
                            ctx.channel().config().getOption(ChannelOption.TCP_NODELAY));
                      }
                    })
                .bind(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0))
                .sync()
                .channel();
        DirectDialer dialer =
            new DirectDialer(
                transport,
                0,
                new dev.nodemesh.proxy.budget.PodBudgets(100, 100, registry),
                registry,
                (fd, ipv6) -> {});
        Channel downstream = transport.clientChannels(0).newChannel();
        group.register(downstream).sync();
        ChannelFuture f =
            group
                .next()
                .submit(
                    () ->
                        dialer.connect(
                            downstream,
                            NetworkNamespace.home(),
                            (InetSocketAddress) listener.localAddress()))
                .get(10, TimeUnit.SECONDS);
        assertTrue(f.await(10, TimeUnit.SECONDS) && f.isSuccess(), String.valueOf(f.cause()));
        assertTrue(f.channel().config().getOption(ChannelOption.TCP_NODELAY), kind + " dialled");
        assertTrue(acceptedNoDelay.get(10, TimeUnit.SECONDS), kind + " accepted");
        f.channel().close().sync();
        downstream.close().sync();
        listener.close().sync();
      } finally {
        group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
      }
    }
  }
}
