package dev.nodemesh.proxy.intercept;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.iptables.RedirectRules;
import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets;
import dev.nodemesh.proxy.testing.TestNode;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFactory;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.channel.epoll.EpollIoHandler;
import io.netty.channel.epoll.EpollServerSocketChannel;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The moment of an upgrade in eBPF mode that lost requests, made deterministic. The old process has
 * enrolled the client pod (its netns cookie registered in the shared pinned maps, the
 * caller-address rules in the pod, which turn conntrack on there); the new process has adopted the
 * pins and bound its own 15001 listener in the pod (SO_REUSEPORT, so the kernel already hands it
 * connections) but has not run its enrolment for the pod yet. A connection the app makes to a
 * Service VIP lands on the new listener: its original destination must be the VIP, found in the
 * shared maps. It used to be looked up only for pods this process had registered itself, so it fell
 * back to {@code SO_ORIGINAL_DST}, which conntrack answered with the listener itself; the proxy
 * then dialled its own listener, and each round was one more connection of the client pod until its
 * budget refused one (UpgradeRootTest: 4 of 3,000 requests reset, the client's budget refused
 * twice). A connection that really was addressed to the listener is refused by {@link
 * Relays#originalDestination}, never dialled. And a failed enrolment in the new process leaves the
 * old process's registration alone.
 *
 * <p>The programs attach to a cgroup this test creates; the app is a helper process in the pod's
 * netns and that cgroup ({@link PodSockets}); the "new process's listener" is a socket this test
 * binds in the pod.
 */
@RootTest
class EbpfUpgradeWindowRootTest {
  private static final int PROXY_MARK = RedirectRules.defaults().proxyMark();

  @TempDir Path tmp;
  private TestNode node;
  private TestCgroup cgroup;
  private TestBpffs bpffs;
  private Path pins;
  private @Nullable EventLoopGroup loops;

  @BeforeEach
  void setUp() throws Exception {
    cgroup = TestCgroup.create("upgrade-window");
    bpffs = TestBpffs.mount();
    pins = bpffs.path().resolve("nodemesh");
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    loops = new MultiThreadIoEventLoopGroup(1, EpollIoHandler.newFactory());
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      if (loops != null) {
        loops.shutdownGracefully(0, 0, TimeUnit.SECONDS).syncUninterruptibly();
      }
      node.close();
      InterceptionPrograms.install(cgroup.path(), pins).uninstall();
    } finally {
      try {
        bpffs.close();
      } finally {
        cgroup.close();
      }
    }
  }

  @Test
  void theNewProcessFindsTheOriginalDestinationBeforeItsOwnEnrolmentOfThePod() throws Exception {
    InterceptionMode mode = InterceptionMode.ebpf(cgroup.path(), pins);
    Path netnsPath = node.pod("client").path();
    LinkedBlockingQueue<Channel> accepted = new LinkedBlockingQueue<>();
    try (NetworkNamespace netns = NetworkNamespace.open(netnsPath);
        EbpfInterception old =
            EbpfInterception.start(mode, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK)) {
      EnrolledPod client =
          new EnrolledPod(
              "uid-client",
              "client",
              "default",
              netnsPath.toString(),
              List.of(InetAddress.getByName(node.ip("client"))),
              netns);
      Channel listener = listen(netns, accepted);
      old.install(client);
      try (EbpfInterception upgraded =
              EbpfInterception.start(mode, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK);
          PodSockets app = PodSockets.start(node.pod("client"), cgroup)) {
        try (PodSockets.Conn c = app.connect(Mesh.VIP, 80)) {
          Channel ch = accepted.poll(10, TimeUnit.SECONDS);
          assertEquals(
              new InetSocketAddress(Mesh.VIP, 80),
              upgraded.originalDestination(ch, client),
              "from the shared maps, before the new process enrolled the pod");
          ch.close().sync();
        }
        // Nothing rewrote this one (connect4 leaves loopback alone): the fallback's answer is
        // the listener itself, which is refused rather than dialled.
        try (PodSockets.Conn c = app.connect("127.0.0.1", NodeProxyConfig.OUTBOUND_PORT)) {
          Channel ch = accepted.poll(10, TimeUnit.SECONDS);
          assertEquals(
              new InetSocketAddress("127.0.0.1", NodeProxyConfig.OUTBOUND_PORT),
              upgraded.originalDestination(ch, client),
              "conntrack answers with the listener for a connection nothing rewrote");
          assertNull(
              Relays.originalDestination(
                  ch, client, () -> upgraded.originalDestination(ch, client)),
              "refused, not dialled");
          ch.closeFuture().sync();
        }
      } finally {
        old.remove(netnsPath);
        listener.close().sync();
      }
    }
  }

  /**
   * The new process's enrolment of a pod the old process still serves fails half-way (here its
   * caller-address rules cannot be installed: the namespace path it was given does not open). It
   * must not take the old process's registration with it, which would let the pod's connections
   * bypass the mesh: the maps are shared, so undoing "its" registration undid the old one's.
   */
  @Test
  void aFailedEnrolmentInTheNewProcessLeavesTheOldOnesCaptureInPlace() throws Exception {
    InterceptionMode mode = InterceptionMode.ebpf(cgroup.path(), pins);
    Path netnsPath = node.pod("client").path();
    LinkedBlockingQueue<Channel> accepted = new LinkedBlockingQueue<>();
    try (NetworkNamespace netns = NetworkNamespace.open(netnsPath);
        EbpfInterception old =
            EbpfInterception.start(mode, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK)) {
      List<InetAddress> ips = List.of(InetAddress.getByName(node.ip("client")));
      EnrolledPod client =
          new EnrolledPod("uid-client", "client", "default", netnsPath.toString(), ips, netns);
      Channel listener = listen(netns, accepted);
      old.install(client);
      try (EbpfInterception upgraded =
              EbpfInterception.start(mode, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK);
          PodSockets app = PodSockets.start(node.pod("client"), cgroup)) {
        EnrolledPod unreachable =
            new EnrolledPod(
                "uid-client", "client", "default", tmp.resolve("gone").toString(), ips, netns);
        assertThrows(IOException.class, () -> upgraded.install(unreachable));
        assertTrue(upgraded.programs().registration(netns.cookie()).isPresent(), "registered");
        try (PodSockets.Conn c = app.connect(Mesh.VIP, 80)) {
          Channel ch = accepted.poll(10, TimeUnit.SECONDS);
          assertNotNull(ch, "the app's connect to the VIP is still captured");
          assertEquals(new InetSocketAddress(Mesh.VIP, 80), old.originalDestination(ch, client));
          ch.close().sync();
        }
      } finally {
        old.remove(netnsPath);
        listener.close().sync();
      }
    }
  }

  /** The new process's 15001 listener in the pod, as PodListeners binds it. */
  private Channel listen(NetworkNamespace netns, LinkedBlockingQueue<Channel> accepted)
      throws InterruptedException {
    return new ServerBootstrap()
        .group(loops)
        .channelFactory(
            (ChannelFactory<EpollServerSocketChannel>)
                () -> {
                  // The socket is made in the constructor: in the pod's namespace.
                  try (NetworkNamespace.Scope in = netns.enter()) {
                    return new EpollServerSocketChannel();
                  } catch (NativeException e) {
                    throw new UncheckedIOException(e);
                  }
                })
        .childHandler(
            // Sharable (one instance for every accepted channel); runs once each is registered.
            new ChannelInitializer<Channel>() {
              @Override
              protected void initChannel(Channel ch) {
                accepted.add(ch);
              }
            })
        .bind(new InetSocketAddress("127.0.0.1", NodeProxyConfig.OUTBOUND_PORT))
        .sync()
        .channel();
  }
}
