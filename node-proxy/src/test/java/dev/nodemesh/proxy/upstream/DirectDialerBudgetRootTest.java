package dev.nodemesh.proxy.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.budget.Direction;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.budget.TestPods;
import dev.nodemesh.proxy.budget.UpstreamBudgetExceeded;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.transport.TransportKind;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * {@link DirectDialer} against a pod's upstream budget with real epoll sockets on loopback (root:
 * the dialer enters a network namespace, here the test's own, with setns): within the budget each
 * dial makes a socket and its close gives the claim back; past it no socket is made and the dial
 * fails with {@link UpstreamBudgetExceeded}, counted for the pod.
 */
@RootTest
class DirectDialerBudgetRootTest {
  private final SimpleMeterRegistry registry = new SimpleMeterRegistry();
  private final PodBudgets budgets = new PodBudgets(10, 2, registry);
  private EventLoopGroup loop;
  private ServerSocket upstream;
  private ServerSocket listener;
  private Socket client;
  private Channel downstream;

  @BeforeEach
  void setUp() throws Exception {
    Transport transport = Transport.of(TransportKind.EPOLL);
    loop = transport.newGroup(1, new DefaultThreadFactory("dialer-test"));
    upstream = new ServerSocket(0, 16, InetAddress.getLoopbackAddress());
    // The downstream: a real epoll channel on the loop, admitted as the pod's outbound connection.
    listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
    ChannelFuture connected =
        new io.netty.bootstrap.Bootstrap()
            .group(loop)
            .channelFactory(transport.clientChannels(0))
            .handler(new io.netty.channel.ChannelInboundHandlerAdapter())
            .connect(listener.getLocalSocketAddress());
    client = listener.accept();
    downstream = connected.sync().channel();
    assertTrue(on(() -> budgets.of(TestPods.pod("fan-out")).admit(downstream, Direction.OUTBOUND)));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (downstream != null) {
        downstream.close().sync();
      }
      for (AutoCloseable c : new AutoCloseable[] {client, listener, upstream}) {
        if (c != null) {
          c.close();
        }
      }
    } finally {
      loop.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
    }
  }

  private <T> T on(Callable<T> task) throws Exception {
    return loop.submit(task).get(10, TimeUnit.SECONDS);
  }

  private ChannelFuture dial(DirectDialer dialer) throws Exception {
    InetSocketAddress to = (InetSocketAddress) upstream.getLocalSocketAddress();
    ChannelFuture f = on(() -> dialer.connect(downstream, NetworkNamespace.home(), to));
    f.await(10, TimeUnit.SECONDS);
    return f;
  }

  private int open() throws Exception {
    return on(() -> budgets.of(TestPods.pod("fan-out")).openUpstream(Direction.OUTBOUND));
  }

  @Test
  void dialsPastThePodsUpstreamBudgetFailAtOnceAndAClosedSocketGivesItsSlotBack() throws Exception {
    DirectDialer dialer =
        new DirectDialer(
            Transport.of(TransportKind.EPOLL),
            0,
            budgets,
            new io.micrometer.core.instrument.simple.SimpleMeterRegistry());
    ChannelFuture first = dial(dialer);
    ChannelFuture second = dial(dialer);
    assertTrue(first.isSuccess() && second.isSuccess(), "two sockets within a budget of two");
    assertEquals(2, open());

    ChannelFuture third = dial(dialer);
    assertInstanceOf(UpstreamBudgetExceeded.class, third.cause());
    assertEquals(2, open(), "no socket was made for the refused dial");
    assertEquals(
        1.0,
        registry
            .get("nodemesh.pod.connections.refused")
            .tags("source_workload", "fan-out", "reason", "upstream_budget")
            .counter()
            .count());

    first.channel().close().sync();
    assertEquals(1, open(), "a closed upstream socket gives its claim back");
    ChannelFuture fourth = dial(dialer);
    assertTrue(fourth.isSuccess());
    second.channel().close().sync();
    fourth.channel().close().sync();
    assertEquals(0, open());
  }
}
