package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.api.agent.v1.SnapshotRequest;
import dev.nodemesh.api.agent.v1.SnapshotResponse;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.transport.TransportKind;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.IOException;
import java.net.ConnectException;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.HashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The foundation's end-to-end behaviour with real iptables rules in real network namespaces: one
 * node proxy in this JVM, pods as namespaces on a bridge, test servers inside the pods.
 */
@RootTest
class InterceptionRootTest {
  @TempDir Path tmp;
  private TestNode node;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addStandardMesh();
    node.addPod("outside", 20);
    node.serve("outside", 8080, TestServer.Mode.NAME);
    node.startProxy(TransportKind.EPOLL);
    for (String p : new String[] {"client", "echo-1", "echo-2", "echo-3"}) {
      assertFalse(node.enrol(p).getAlreadyEnrolled());
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    node.close();
  }

  @Test
  void serviceTrafficIsSpreadOverEveryEndpoint() throws IOException {
    Map<String, Integer> served = new HashMap<>();
    for (int i = 0; i < 9; i++) {
      String[] line = readLine(node.connect("client", Mesh.VIP, 80)).split(" ");
      served.merge(line[0], 1, Integer::sum);
    }
    assertEquals(Map.of("echo-1", 3, "echo-2", 3, "echo-3", 3), served);
    String metrics = node.proxy().dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains(
            "nodemesh_tcp_connections_opened_total{destination_namespace=\"default\","
                + "destination_service=\"echo.default\",destination_workload=\"echo-2\","
                + "node=\"test-node\",reporter=\"source\",source_namespace=\"default\","
                + "source_workload=\"client\"} 3.0"),
        metrics);
  }

  @Test
  void nonMeshDestinationPassesThroughUnchanged() throws IOException {
    String[] line = readLine(node.connect("client", node.ip("outside"), 8080)).split(" ");
    assertEquals("outside", line[0]);
    // It went through the proxy (the pod's redirect caught it) and arrived from the client's IP.
    assertEquals(node.ip("client"), line[1]);
    assertTrue(
        node.proxy().dataPlane().metrics().scrape().contains("destination_workload=\"unknown\""));
  }

  @Test
  void inboundFromOutsideTheMeshIsCaptured() throws IOException {
    String[] line = readLine(node.connect("outside", node.ip("echo-1"), 8080)).split(" ");
    assertEquals("echo-1", line[0]);
    // Delivered by the proxy from inside echo-1's namespace: the app sees a local peer.
    assertEquals(node.ip("echo-1"), line[1]);
    assertTrue(
        node.proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .contains("reporter=\"destination\",source_namespace=\"unknown\""));
  }

  @Test
  void largeTransferArrivesByteIdentical() throws Exception {
    long size = 128L * 1024 * 1024;
    SocketChannel ch = node.connect("client", Mesh.VIP, 9000);
    ExecutorService writer = Executors.newSingleThreadExecutor();
    try (ch) {
      Future<byte[]> sent =
          writer.submit(
              () -> {
                MessageDigest d = MessageDigest.getInstance("SHA-256");
                Random r = new Random(42);
                byte[] chunk = new byte[256 * 1024];
                for (long done = 0; done < size; done += chunk.length) {
                  r.nextBytes(chunk);
                  d.update(chunk);
                  ByteBuffer b = ByteBuffer.wrap(chunk);
                  while (b.hasRemaining()) {
                    ch.write(b);
                  }
                }
                ch.shutdownOutput();
                return d.digest();
              });
      MessageDigest got = MessageDigest.getInstance("SHA-256");
      ByteBuffer buf = ByteBuffer.allocate(256 * 1024);
      long received = 0;
      int n;
      while ((n = ch.read(buf)) >= 0) {
        buf.flip();
        got.update(buf);
        buf.clear();
        received += n;
      }
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
      assertArrayEquals(sent.get(60, TimeUnit.SECONDS), got.digest());
    } finally {
      writer.shutdownNow();
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
    try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
      ch.socket().setReceiveBufferSize(16 * 1024);
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
    try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
      ch.write(ByteBuffer.wrap("hello, half-closed world".getBytes(StandardCharsets.UTF_8)));
      ch.shutdownOutput();
      assertEquals("hello, half-closed world", readAll(ch));
    }
  }

  @Test
  void delPodRestoresTheNamespace() throws Exception {
    assertTrue(node.natTable("client").contains("NODEMESH_OUTPUT"));
    boolean was =
        node.agent()
            .stub()
            .delPod(DelPodRequest.newBuilder().setUid("uid-client").build())
            .getWasEnrolled();
    assertTrue(was);
    assertFalse(node.natTable("client").contains("NODEMESH"), node.natTable("client"));
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
    assertFalse(node.natTable("echo-2").contains("NODEMESH"));
    assertTrue(node.natTable("echo-1").contains("NODEMESH_OUTPUT"));
    assertEquals(2, node.agent().listPods().getPodsCount());
    // The service still works through the remaining enrolled client.
    assertTrue(readLine(node.connect("client", Mesh.VIP, 80)).startsWith("echo-"));
  }

  @Test
  void withTheProxyDownMeshTrafficFailsInsteadOfBypassing() throws Exception {
    node.stopProxy();
    assertThrows(SocketException.class, () -> node.connect("client", Mesh.VIP, 80).close());
    // Even a pod IP the client could reach directly is refused while enrolled and unproxied.
    assertThrows(
        ConnectException.class, () -> node.connect("client", node.ip("echo-1"), 8080).close());
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
    try (SocketChannel ch = node.connect("client", Mesh.VIP, 9000)) {
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
      assertFalse(node.natTable("busy").contains("NODEMESH"), node.natTable("busy"));
      assertFalse(node.pod("busy").exec("ss", "-ltn").contains(":15006"));
    }
  }

  static String readLine(SocketChannel ch) throws IOException {
    try (ch) {
      return readAll(ch).strip();
    }
  }

  static String readAll(SocketChannel ch) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(64 * 1024);
    while (ch.read(buf) >= 0) {
      if (!buf.hasRemaining()) {
        throw new IOException("reply too long");
      }
    }
    buf.flip();
    return StandardCharsets.UTF_8.decode(buf).toString();
  }

  static void waitFor(BooleanSupplier condition) throws InterruptedException {
    for (int i = 0; i < 300; i++) {
      if (condition.getAsBoolean()) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("condition not met within 30 s");
  }

  static void waitFor(BooleanSupplier condition, java.util.function.Supplier<String> why)
      throws InterruptedException {
    try {
      waitFor(condition);
    } catch (AssertionError e) {
      throw new AssertionError(e.getMessage() + ": " + why.get(), e);
    }
  }
}
