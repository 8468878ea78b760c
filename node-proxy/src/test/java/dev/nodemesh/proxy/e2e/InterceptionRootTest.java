package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static dev.nodemesh.proxy.testing.Replies.readAll;
import static dev.nodemesh.proxy.testing.Replies.readLine;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTimeoutPreemptively;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.api.agent.v1.SnapshotRequest;
import dev.nodemesh.api.agent.v1.SnapshotResponse;
import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.budget.Direction;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.BulkEcho;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.Callable;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The foundation's end-to-end behaviour in real network namespaces, in both interception modes: one
 * node proxy in this JVM, pods as namespaces on a bridge, test servers inside the pods.
 *
 * <p>iptables: real nat rules in each pod; clients are sockets this JVM makes inside the pod's
 * netns. eBPF: the programs attached to a cgroup this test creates, pins on a bpffs it mounts; a
 * cgroup hook only sees sockets created by a process in the cgroup, so each client socket is made
 * and connected by a helper process in the pod's netns and the test cgroup and then handed to this
 * JVM ({@link PodSockets}): the test bodies are the same in both modes. The proxy's own upstream
 * sockets are made by this JVM, outside the cgroup, so in eBPF mode the proxy-mark exemption is not
 * what keeps them from looping here; InterceptionProgramsRootTest (bpf) covers the mark with a
 * marked socket inside the cgroup.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(InterceptionRootTest.Kind.class)
class InterceptionRootTest {
  /** The modes the suite runs in; AUTO has its own test (InterceptionFallbackRootTest). */
  enum Kind {
    IPTABLES,
    EBPF
  }

  @Parameter Kind mode;
  @TempDir Path tmp;
  private TestNode node;
  private @Nullable TestCgroup cgroup;
  private @Nullable TestBpffs bpffs;
  private @Nullable Path pins;
  private final Map<String, PodSockets> podSockets = new HashMap<>();
  private final List<Process> processes = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addStandardMesh();
    node.addPod("outside", 20);
    node.serve("outside", 8080, TestServer.Mode.NAME);
    startProxy();
    for (String p : new String[] {"client", "echo-1", "echo-2", "echo-3"}) {
      assertFalse(node.enrol(p).getAlreadyEnrolled());
    }
  }

  private void startProxy() throws Exception {
    if (mode == Kind.IPTABLES) {
      node.startProxy(TransportKind.EPOLL);
      return;
    }
    if (cgroup == null) {
      cgroup = TestCgroup.create("e2e");
      bpffs = TestBpffs.mount();
      pins = bpffs.path().resolve("nodemesh");
    }
    node.startProxy(TransportKind.EPOLL, InterceptionMode.ebpf(cgroup.path(), pins));
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      podSockets.values().forEach(PodSockets::close);
      for (Process p : processes) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
      node.close();
      if (pins != null && Files.exists(pins)) {
        // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
        InterceptionPrograms.install(cgroup.path(), pins).uninstall();
      }
    } finally {
      try {
        if (bpffs != null) {
          bpffs.close();
        }
      } finally {
        if (cgroup != null) {
          cgroup.close();
        }
      }
    }
  }

  /** A connection from {@code pod}'s app, as the current mode can see it (see class comment). */
  private Conn connect(String pod, String ip, int port) throws IOException {
    if (mode == Kind.IPTABLES) {
      return Conn.of(node.connect(pod, ip, port));
    }
    PodSockets sockets = podSockets.get(pod);
    if (sockets == null) {
      sockets = PodSockets.start(node.pod(pod), cgroup);
      podSockets.put(pod, sockets);
    }
    return sockets.connect(ip, port);
  }

  /** Whether the pod's outbound traffic is being captured: its nat rules, or its netns cookie. */
  private boolean intercepted(String pod) throws IOException {
    if (mode == Kind.IPTABLES) {
      return node.natTable(pod).contains("NODEMESH_OUTPUT");
    }
    EbpfInterception ebpf = (EbpfInterception) node.proxy().dataPlane().interception();
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod(pod).path())) {
      return ebpf.programs().registration(ns.cookie()).isPresent();
    }
  }

  /** No trace of interception in the pod: no rules at all (iptables), no registration (eBPF). */
  private boolean untouched(String pod) throws IOException {
    return mode == Kind.IPTABLES ? !node.natTable(pod).contains("NODEMESH") : !intercepted(pod);
  }

  @Test
  void serviceTrafficIsSpreadOverEveryEndpoint() throws IOException {
    Map<String, Integer> served = new HashMap<>();
    for (int i = 0; i < 9; i++) {
      String[] line = readLine(connect("client", Mesh.VIP, 80)).split(" ");
      served.merge(line[0], 1, Integer::sum);
    }
    assertEquals(Map.of("echo-1", 3, "echo-2", 3, "echo-3", 3), served);
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains(
            "nodemesh_tcp_connections_opened_total{destination_namespace=\"default\","
                + "destination_principal=\"unknown\","
                + "destination_service=\"echo.default\",destination_workload=\"echo-2\","
                + "node=\"test-node\",reporter=\"source\",source_namespace=\"default\","
                + "source_principal=\"unknown\",source_workload=\"client\"} 3.0"),
        metrics);
  }

  @Test
  void nonMeshDestinationPassesThroughUnchanged() throws IOException {
    String[] line = readLine(connect("client", node.ip("outside"), 8080)).split(" ");
    assertEquals("outside", line[0]);
    // It went through the proxy (the pod's redirect caught it) and arrived from the client's IP.
    assertEquals(node.ip("client"), line[1]);
    assertTrue(
        node.proxy().dataPlane().metrics().scrape().contains("destination_workload=\"unknown\""));
  }

  @Test
  void inboundFromOutsideTheMeshIsCaptured() throws IOException {
    // Both modes: nat PREROUTING in iptables mode, the sk_lookup program in eBPF mode. (The
    // client, "outside", is not enrolled: a JVM socket is fine in both modes.)
    String[] line = readLine(connect("outside", node.ip("echo-1"), 8080)).split(" ");
    assertEquals("echo-1", line[0]);
    // Delivered by the proxy from inside echo-1's namespace, from the caller's own address.
    assertEquals(node.ip("outside"), line[1]);
    assertTrue(
        node.proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .contains("reporter=\"destination\",source_namespace=\"unknown\""));
  }

  /**
   * Dual stack: client, echo-1 and outside get IPv6 addresses, the config gives client and echo-1
   * their podIPs and a Service with an IPv6 cluster IP, and the two pods are enrolled again with
   * both addresses. Native IPv6 connects then go through the proxy ([::1]:15001 in the client, by
   * ip6tables REDIRECT or connect6) with their original destination, and inbound IPv6 is captured
   * on [::]:15006; IPv4 keeps working next to it.
   */
  @Test
  void nativeIpv6GoesThroughTheProxy() throws Exception {
    String client6 = node.addIpv6("client", 10);
    String echo6 = node.addIpv6("echo-1", 11);
    String outside6 = node.addIpv6("outside", 20);
    node.writeConfig(
        "pods.yaml",
        Mesh.dualStackPod("client", node.ip("client"), client6, "client")
            + Mesh.dualStackPod("echo-1", node.ip("echo-1"), echo6, "echo")
            + Mesh.pod("echo-2", node.ip("echo-2"), "echo")
            + Mesh.pod("echo-3", node.ip("echo-3"), "echo"));
    node.writeConfig("services.yaml", Mesh.dualStackService("echo", Mesh.VIP, Mesh.VIP6, "echo"));
    java.net.InetAddress vip6 = java.net.InetAddress.getByName(Mesh.VIP6);
    waitFor(
        () -> node.proxy().dataPlane().snapshots().current().serviceByVip(vip6) != null,
        () -> "the IPv6 cluster IP never reached the proxy's config");
    node.enrol("client");
    node.enrol("echo-1");
    if (mode == Kind.IPTABLES) {
      assertTrue(node.nat6Table("client").contains("NODEMESH_OUTPUT"), node.nat6Table("client"));
      assertFalse(node.nat6Table("outside").contains("NODEMESH"));
    } else {
      EbpfInterception ebpf = (EbpfInterception) node.proxy().dataPlane().interception();
      try (NetworkNamespace ns = NetworkNamespace.open(node.pod("client").path())) {
        assertEquals(
            dev.nodemesh.bpf.maps.PodConfig.IPV6,
            ebpf.programs().registration(ns.cookie()).orElseThrow().flags()
                & dev.nodemesh.bpf.maps.PodConfig.IPV6);
      }
    }
    String client6Text = java.net.InetAddress.getByName(client6).getHostAddress();

    // The IPv6 VIP: only echo-1 has an IPv6 address, so every connection lands there.
    for (int i = 0; i < 3; i++) {
      String[] line = readLine(connect("client", Mesh.VIP6, 80)).split(" ");
      assertEquals("echo-1", line[0]);
      // Same node: delivered from inside echo-1's namespace, from the client's IPv6 address.
      assertEquals(client6Text, line[1]);
    }
    // The server pod's IPv6 address, on the port the app dialled.
    assertEquals("echo-1", readLine(connect("client", echo6, 8080)).split(" ")[0]);
    // Outside the mesh: passed through to exactly the original destination, from the client's
    // IPv6 address (the proxy's socket is made in the client's namespace).
    String[] passed = readLine(connect("client", outside6, 8080)).split(" ");
    assertEquals("outside", passed[0]);
    assertEquals(client6Text, passed[1]);
    // IPv4 still works next to it.
    assertEquals("echo-1", readLine(connect("client", node.ip("echo-1"), 8080)).split(" ")[0]);

    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains(
            "nodemesh_tcp_connections_opened_total{destination_namespace=\"default\","
                + "destination_principal=\"unknown\","
                + "destination_service=\"echo.default\",destination_workload=\"echo-1\","
                + "node=\"test-node\",reporter=\"source\",source_namespace=\"default\","
                + "source_principal=\"unknown\",source_workload=\"client\"} 3.0"),
        metrics);
    // The passthrough was counted by the proxy as well (as "unknown" destination).
    assertTrue(
        metrics
            .lines()
            .anyMatch(
                l ->
                    l.startsWith("nodemesh_tcp_connections_opened_total{")
                        && l.contains("destination_workload=\"unknown\"")
                        && l.contains("reporter=\"source\"")
                        && l.contains("source_workload=\"client\"")
                        && l.endsWith(" 1.0")),
        metrics);

    // Inbound IPv6 from a pod outside the mesh: captured on [::]:15006 in echo-1.
    String inboundBefore = inboundFromUnknown(metrics);
    String[] in = readLine(connect("outside", echo6, 8080)).split(" ");
    assertEquals("echo-1", in[0]);
    // Delivered from the caller's IPv6 address, as for IPv4.
    assertEquals(java.net.InetAddress.getByName(outside6).getHostAddress(), in[1]);
    assertFalse(
        inboundBefore.equals(inboundFromUnknown(node.proxy().dataPlane().metrics().scrape())),
        "the inbound IPv6 connection did not go through the proxy");
  }

  private static String inboundFromUnknown(String metrics) {
    return metrics
        .lines()
        .filter(
            l ->
                l.startsWith("nodemesh_tcp_connections_opened_total")
                    && l.contains("reporter=\"destination\"")
                    && l.contains("source_workload=\"unknown\""))
        .reduce("", (a, b) -> a + "\n" + b);
  }

  @Test
  void largeTransferArrivesByteIdentical() throws Exception {
    long size = 128L * 1024 * 1024;
    try (Conn ch = connect("client", Mesh.VIP, 9000)) {
      BulkEcho echo = BulkEcho.through(ch, size, 42);
      long received = echo.received();
      assertEquals(
          size,
          received,
          () ->
              node.proxy()
                  .dataPlane()
                  .metrics()
                  .scrape()
                  .lines()
                  .filter(l -> l.startsWith("nodemesh_tcp_") && l.contains("bytes"))
                  .reduce("", (a, b) -> a + "\n" + b));
      assertArrayEquals(echo.sentDigest(), echo.receivedDigest());
    }
  }

  /**
   * A client that half-closes early and then reads slowly, in bursts: the proxy's writes to it
   * block and unblock many times after its input has ended (the pattern that hit Netty's epoll
   * re-registration bug, see EpollRegistrationGuard).
   */
  @Test
  void aHalfClosedClientThatReadsSlowlyStillGetsEveryByte() throws Exception {
    byte[] payload = new byte[16 * 1024 * 1024];
    new Random(3).nextBytes(payload);
    try (Conn ch = connect("client", Mesh.VIP, 9000)) {
      ch.setReceiveBufferSize(16 * 1024);
      Thread writer =
          new Thread(
              () -> {
                try {
                  ByteBuffer b = ByteBuffer.wrap(payload);
                  while (b.hasRemaining()) {
                    ch.write(b);
                  }
                  ch.shutdownOutput();
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              });
      writer.start();
      MessageDigest want = MessageDigest.getInstance("SHA-256");
      MessageDigest got = MessageDigest.getInstance("SHA-256");
      want.update(payload);
      ByteBuffer buf = ByteBuffer.allocate(32 * 1024);
      long received = 0;
      int n;
      int bursts = 0;
      while ((n = ch.read(buf)) >= 0) {
        buf.flip();
        got.update(buf);
        buf.clear();
        received += n;
        if (++bursts % 16 == 0) {
          Thread.sleep(1); // read in bursts so the proxy's writes to us keep blocking
        }
      }
      writer.join(30_000);
      assertEquals(payload.length, received);
      assertArrayEquals(want.digest(), got.digest());
    }
  }

  @Test
  void halfCloseIsPassedOnAndTheReplyStillArrives() throws IOException {
    try (Conn ch = connect("client", Mesh.VIP, 9000)) {
      ch.write(ByteBuffer.wrap("hello, half-closed world".getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      assertEquals("hello, half-closed world", readAll(ch));
    }
  }

  @Test
  void delPodRestoresTheNamespace() throws Exception {
    assertTrue(intercepted("client"));
    boolean was =
        node.agent()
            .stub()
            .delPod(DelPodRequest.newBuilder().setUid("uid-client").build())
            .getWasEnrolled();
    assertTrue(was);
    assertTrue(untouched("client"));
    // Nothing captures the client's connects any more: a service VIP has no backend on the
    // bridge (nothing answers 10.97.0.10), so the connect fails instead of reaching an echo pod.
    assertThrows(SocketException.class, () -> readLine(connect("client", Mesh.VIP, 80)));
    // The outbound listener is gone too: 15001 is free again inside the pod.
    assertFalse(node.pod("client").exec("ss", "-ltn").contains(":15001"));
    // Deleting again is fine and says it was not enrolled.
    assertFalse(
        node.agent()
            .stub()
            .delPod(DelPodRequest.newBuilder().setUid("uid-client").build())
            .getWasEnrolled());
  }

  @Test
  void aSnapshotReconcilesTheWholeSetOfPods() throws Exception {
    SnapshotResponse r =
        node.agent()
            .stub()
            .snapshot(
                SnapshotRequest.newBuilder()
                    .addPods(node.podMessage("client"))
                    .addPods(node.podMessage("echo-1"))
                    .build());
    assertEquals(0, r.getAdded());
    assertEquals(2, r.getUnchanged());
    assertEquals(2, r.getRemoved());
    assertTrue(untouched("echo-2"));
    assertTrue(intercepted("echo-1"));
    assertEquals(2, node.agent().listPods().getPodsCount());
    // The service still works through the remaining enrolled client.
    assertTrue(readLine(connect("client", Mesh.VIP, 80)).startsWith("echo-"));
  }

  /**
   * A connection addressed to one of the proxy's own listeners in a pod (nothing redirected it) is
   * reset, never relayed: the proxy would dial that listener again from the same namespace, one
   * more connection for the pod each round, until its budget refused one (in an upgrade in eBPF
   * mode, a lookup that fell back to conntrack answered so for connections the VIP's caller made:
   * see EbpfUpgradeWindowRootTest). Outbound to 127.0.0.1:15001 from the client, inbound from a pod
   * outside the mesh to the client's own 15006.
   */
  @Test
  void aConnectionToTheProxysOwnListenerIsResetNotRelayedBackIntoIt() throws Exception {
    assertResetWithoutAByte(() -> connect("client", "127.0.0.1", NodeProxyConfig.OUTBOUND_PORT));
    assertResetWithoutAByte(
        () -> Conn.of(node.connect("outside", node.ip("client"), NodeProxyConfig.INBOUND_PORT)));

    EnrolledPod client =
        node.proxy().dataPlane().pods().byIp(InetAddress.getByName(node.ip("client")));
    PodBudgets.PodBudget budget = node.proxy().dataPlane().budgets().of(client);
    for (Direction d : Direction.values()) {
      assertEquals(0, budget.openUpstream(d), d + ": no socket was dialled for them");
    }
    waitFor(
        () -> budget.open(Direction.OUTBOUND) == 0 && budget.open(Direction.INBOUND) == 0,
        () ->
            "both closed: "
                + budget.open(Direction.OUTBOUND)
                + " "
                + budget.open(Direction.INBOUND));
    String scrape = node.proxy().dataPlane().metrics().scrape();
    assertFalse(scrape.contains("nodemesh_pod_connections_refused_total{"), scrape);
  }

  /**
   * The connection {@code open} makes is reset before it carries a byte: at the connect itself when
   * the reset beats the test's hand-over of the socket (as it can in eBPF mode), else at the first
   * read. Refused (nothing listening) does not count.
   */
  private static void assertResetWithoutAByte(Callable<PodSockets.Conn> open) throws Exception {
    PodSockets.Conn c;
    try {
      c = open.call();
    } catch (ConnectException refused) {
      throw new AssertionError("refused, not reset: nothing listened", refused);
    } catch (SocketException resetAtConnect) {
      return;
    }
    try {
      assertThrows(
          SocketException.class,
          () -> assertTimeoutPreemptively(Duration.ofSeconds(30), () -> readAll(c)));
    } finally {
      c.close();
    }
  }

  @Test
  void withTheProxyDownMeshTrafficFailsInsteadOfBypassing() throws Exception {
    node.stopProxy();
    assertThrows(SocketException.class, () -> connect("client", Mesh.VIP, 80).close());
    // Even a pod IP the client could reach directly is refused while enrolled and unproxied.
    assertThrows(ConnectException.class, () -> connect("client", node.ip("echo-1"), 8080).close());
  }

  /**
   * A proxy restart under a client that opens new connections all the time (bounded): while no
   * proxy runs, the pod's connects are refused, because the rules (iptables) or the pinned programs
   * and the pod's registration (eBPF) stay; the new proxy adopts them and the pods are enrolled
   * again; and at no moment did a connection get past the mesh. To make an escape visible, the
   * service VIP is also reachable directly for this test: the unenrolled pod "outside" holds it on
   * its eth0 and answers on port 80, so a connection that bypassed the proxy would reach "outside"
   * instead of an echo pod.
   */
  @Test
  void aRestartUnderConstantNewConnectionsLetsNoneBypassTheProxy() throws Exception {
    node.pod("outside").exec("ip", "addr", "add", Mesh.VIP + "/32", "dev", "eth0");
    TestServer decoy = node.serve("outside", 80, TestServer.Mode.NAME);
    Path stop = tmp.resolve("stop-client");
    String script =
        "import socket,os,sys,time\n"
            + "for i in range(20000):\n"
            + "  if os.path.exists('"
            + stop
            + "'): break\n"
            + "  try:\n"
            + "    s=socket.create_connection(('"
            + Mesh.VIP
            + "',80), timeout=5)\n"
            + "    line=s.makefile().readline().strip(); s.close()\n"
            + "    print('ok '+line if line else 'short', flush=True)\n"
            + "  except OSError as e:\n"
            + "    print('err', e.errno, flush=True)\n"
            + "  time.sleep(0.002)\n"
            + "print('end', flush=True)\n";
    Process client = podProcess("client", "/usr/bin/python3", "-c", script);
    ClientLog log = new ClientLog(client);
    try {
      log.awaitOk(50);
      node.stopProxy();
      int refusedBefore = log.refused.get();
      waitFor(() -> log.refused.get() >= refusedBefore + 20, log::toString);
      startProxy();
      if (mode == Kind.EBPF) {
        EbpfInterception ebpf = (EbpfInterception) node.proxy().dataPlane().interception();
        assertTrue(ebpf.programs().adopted(), "the new proxy must adopt the pinned programs");
      }
      node.enrolStandardMesh();
      int okBefore = log.ok.get();
      log.awaitOk(okBefore + 50);
    } finally {
      Files.createFile(stop);
      assertTrue(client.waitFor(30, TimeUnit.SECONDS), "client did not stop");
      log.done.join(10_000);
    }
    assertEquals(List.of(), decoy.peers(), "connections bypassed the proxy: " + log);
    assertEquals(0, log.bypassed.get(), log.toString());
    assertEquals(0, log.other.get(), "only refusals and cut connections are allowed: " + log);
  }

  /** Counts a looping pod client's lines: through the proxy, bypassing it, refused, or else. */
  private final class ClientLog {
    final AtomicInteger ok = new AtomicInteger();
    final AtomicInteger bypassed = new AtomicInteger();
    final AtomicInteger refused = new AtomicInteger();
    final AtomicInteger cut = new AtomicInteger();
    final AtomicInteger other = new AtomicInteger();
    final List<String> odd = new CopyOnWriteArrayList<>();
    final Thread done;

    ClientLog(Process p) {
      String through = "ok echo-";
      done =
          new Thread(
              () -> {
                try (var r =
                    new BufferedReader(
                        new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                  String line;
                  while ((line = r.readLine()) != null) {
                    if (line.startsWith(through)) {
                      ok.incrementAndGet();
                    } else if (line.startsWith("ok ")) {
                      bypassed.incrementAndGet();
                      odd.add(line);
                    } else if (line.equals("err 111")) {
                      refused.incrementAndGet();
                    } else if (line.equals("short") || line.equals("err 104")) {
                      cut.incrementAndGet(); // in flight when the old proxy stopped
                    } else if (!line.equals("end")) {
                      other.incrementAndGet();
                      odd.add(line);
                    }
                  }
                } catch (IOException e) {
                  odd.add(e.toString());
                }
              },
              "pod-client-log");
      done.setDaemon(true);
      done.start();
    }

    void awaitOk(int n) throws InterruptedException {
      waitFor(() -> ok.get() >= n, this::toString);
    }

    @Override
    public String toString() {
      return "ok "
          + ok
          + ", bypassed "
          + bypassed
          + ", refused "
          + refused
          + ", cut "
          + cut
          + ", other "
          + other
          + (odd.isEmpty() ? "" : ", e.g. " + odd.subList(0, Math.min(5, odd.size())));
    }
  }

  /** A process in the pod's netns (and, in eBPF mode, the test cgroup), ended in tearDown. */
  private Process podProcess(String pod, String... cmd) throws IOException {
    List<String> full = new ArrayList<>();
    if (mode == Kind.EBPF) {
      full.addAll(
          List.of(
              "sh",
              "-c",
              cgroup.joinCommand() + "ip netns exec " + node.pod(pod).name() + " \"$@\"",
              "sh"));
    } else {
      full.addAll(List.of("ip", "netns", "exec", node.pod(pod).name()));
    }
    full.addAll(List.of(cmd));
    Process p = new ProcessBuilder(full).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    processes.add(p);
    return p;
  }

  @Test
  void aBrokenConfigFileLeavesTheOldConfigServing() throws Exception {
    long before = node.proxy().dataPlane().snapshots().current().version();
    node.writeConfig(
        "services.yaml",
        Mesh.service("echo", Mesh.VIP, "echo").replace("port: 9000", "port: 70000"));
    waitFor(
        () ->
            node.proxy()
                .dataPlane()
                .metrics()
                .scrape()
                .contains("nodemesh_config_rejected_total{node=\"test-node\"} 1"),
        () ->
            node.proxy()
                .dataPlane()
                .metrics()
                .scrape()
                .lines()
                .filter(l -> l.contains("config"))
                .reduce("", (a, b) -> a + "\n" + b));
    assertEquals(before, node.proxy().dataPlane().snapshots().current().version());
    try (Conn ch = connect("client", Mesh.VIP, 9000)) {
      ch.write(ByteBuffer.wrap("still here".getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      assertEquals("still here", readAll(ch));
    }
  }

  @Test
  void aMalformedAddPodIsRejectedWholeWithTheField() {
    Pod bad =
        node.podMessage("echo-1").toBuilder().setUid("uid-x").clearIps().addIps("10.1.2.x").build();
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> node.agent().stub().addPod(AddPodRequest.newBuilder().setPod(bad).build()));
    assertEquals(Status.Code.INVALID_ARGUMENT, e.getStatus().getCode());
    assertTrue(e.getStatus().getDescription().contains("pod.ips[0]"), e.getMessage());
    // Enrolling the same pod again is acknowledged as a no-op.
    assertTrue(node.enrol("echo-1").getAlreadyEnrolled());
  }

  @Test
  void aPodWhoseSetupFailsIsLeftWithNothingInstalled() throws Exception {
    node.addPod("busy", 30);
    // Something in the pod already holds 127.0.0.1:15001, so the proxy cannot listen there.
    ServerSocketChannel squatter;
    try (var ns = dev.nodemesh.bpf.netns.NetworkNamespace.open(node.pod("busy").path());
        var in = ns.enter()) {
      squatter = ServerSocketChannel.open();
    }
    try (squatter) {
      squatter.bind(new java.net.InetSocketAddress("127.0.0.1", 15001));
      StatusRuntimeException e =
          assertThrows(StatusRuntimeException.class, () -> node.enrol("busy"));
      assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
      assertTrue(untouched("busy"));
      assertFalse(node.pod("busy").exec("ss", "-ltn").contains(":15006"));
    }
  }
}
