package dev.nodemesh.cni.runner;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.Cleanup;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.cni.agent.AgentClient;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The nodemesh plugin chained after Debian's reference {@code bridge} + {@code host-local}, run by
 * {@link CniRunner} the way a runtime runs them, with a node proxy in this JVM: after ADD the pod's
 * traffic to a mesh service goes through the proxy; after DEL the pod's namespace is clean and its
 * IP is back in the pool.
 *
 * <p>Every plugin runs under {@code ip netns exec <node>}, so the bridge is made in the test's node
 * namespace and the root namespace is never touched. host-local keeps its state in this test's temp
 * dir.
 */
@RootTest
class ChainRootTest {
  private static final Path REFERENCE_PLUGINS = Path.of("/usr/lib/cni");
  private static final String SUBNET = "10.215.0.";
  private static final String VIP = "10.97.0.10";

  @TempDir Path tmp;
  private final Cleanup cleanup = new Cleanup();

  @AfterEach
  void tearDown() throws Exception {
    cleanup.close();
  }

  /**
   * A CNI bin dir holding nodemesh: the real bin/nodemesh-cni wrapper over target/cni-lib, told
   * which java to use (a runtime's environment has no JAVA_HOME; install-cni links one instead).
   */
  private Path binDir() throws IOException {
    Path bin = Files.createDirectories(tmp.resolve("bin"));
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String script =
        "#!/bin/sh\nNODEMESH_CNI_JAVA='"
            + java
            + "' exec '"
            + Path.of("bin/nodemesh-cni").toAbsolutePath()
            + "' \"$@\"\n";
    Path nm = bin.resolve("nodemesh");
    Files.writeString(nm, script, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(nm, PosixFilePermissions.fromString("rwxr-xr-x"));
    return bin;
  }

  private ObjectNode conflist() throws Exception {
    String bridge = TestNetns.runPrefix() + "br";
    return CniRunner.parseConflist(
        """
        {"cniVersion": "1.0.0", "name": "nmtest", "plugins": [
          {"type": "bridge", "bridge": "%s", "isGateway": true, "ipMasq": false,
           "ipam": {"type": "host-local", "dataDir": "%s",
                    "ranges": [[{"subnet": "%s0/24"}]], "routes": [{"dst": "0.0.0.0/0"}]}},
          {"type": "nodemesh", "agentSocket": "%s", "runDir": "%s"}]}
        """
            .formatted(
                bridge, tmp.resolve("ipam"), SUBNET, tmp.resolve("agent.sock"), tmp.resolve("run"))
            .getBytes(StandardCharsets.UTF_8));
  }

  private static CniRunner.Attachment attachment(TestNetns pod, String name, int host) {
    return new CniRunner.Attachment(
        "ctr-" + name,
        pod.path(),
        "eth0",
        Map.of(
            "IgnoreUnknown",
            "1",
            "K8S_POD_NAMESPACE",
            "default",
            "K8S_POD_NAME",
            name,
            "K8S_POD_UID",
            "uid-" + name,
            // host-local's own arg: a fixed IP so the proxy's config can name it up front.
            "IP",
            SUBNET + host));
  }

  private static String podYaml(String name, String ip, String app) {
    return """
        apiVersion: v1
        kind: Pod
        metadata: {name: %s, namespace: default, uid: uid-%s, labels: {app: %s}}
        spec:
          nodeName: test-node
          containers: [{name: app, image: app, ports: [{name: tcp, containerPort: 9000}]}]
        status: {podIP: %s}
        ---
        """
        .formatted(name, name, app, ip);
  }

  @Test
  void chainedAfterBridgeAndHostLocalThePodIsMeshedAndDelCleansUp() throws Exception {
    TestNetns node = cleanup.add(TestNetns.create("node"));
    TestNetns client = cleanup.add(TestNetns.create("client"));
    TestNetns echo = cleanup.add(TestNetns.create("echo"));

    Path config = Files.createDirectories(tmp.resolve("config"));
    Files.writeString(
        config.resolve("pods.yaml"),
        podYaml("client", SUBNET + 10, "client") + podYaml("echo", SUBNET + 11, "echo"));
    Files.writeString(
        config.resolve("services.yaml"),
        """
        apiVersion: v1
        kind: Service
        metadata: {name: echo, namespace: default}
        spec:
          clusterIP: %s
          selector: {app: echo}
          ports: [{name: tcp, port: 9000, targetPort: 9000}]
        """
            .formatted(VIP));
    NodeProxy proxy =
        cleanup.add(
            NodeProxy.start(
                NodeProxyConfig.builder()
                    .transport(TransportKind.EPOLL)
                    .configDir(config)
                    .agentSocket(tmp.resolve("agent.sock"))
                    .adminAddress(new InetSocketAddress("127.0.0.1", 0))
                    .nodeName("test-node")
                    .workerThreads(2)
                    .build()));

    CniRunner runner =
        new CniRunner(
            List.of(binDir(), REFERENCE_PLUGINS),
            List.of("ip", "netns", "exec", node.name()),
            tmp.resolve("cache"),
            Duration.ofSeconds(60));
    ObjectNode list = conflist();
    CniRunner.Attachment clientAtt = attachment(client, "client", 10);
    CniRunner.Attachment echoAtt = attachment(echo, "echo", 11);
    // DEL runs on cleanup whatever happens below (DEL is idempotent, so running it twice is fine).
    cleanup.add(() -> runner.del(list, clientAtt));
    cleanup.add(() -> runner.del(list, echoAtt));

    JsonNode result = runner.add(list, clientAtt);
    assertEquals(
        SUBNET + "10/24", result.path("ips").path(0).path("address").asText(), result.toString());
    assertEquals("1.0.0", result.path("cniVersion").asText());
    runner.add(list, echoAtt);
    runner.check(list, clientAtt);

    // Interception is in place in the pod's own namespace.
    String nat = client.exec("iptables-save", "-t", "nat");
    assertTrue(nat.contains("15001"), nat);
    try (AgentClient agent = new AgentClient(tmp.resolve("agent.sock"), Duration.ofSeconds(10))) {
      List<String> uids = agent.listPods().getPodsList().stream().map(Pod::getUid).toList();
      assertTrue(uids.containsAll(List.of("uid-client", "uid-echo")), uids.toString());
    }
    assertTrue(Files.exists(tmp.resolve("run/ctr-client.json")));

    try (ServerSocketChannel server = cleanup.add(listenIn(echo, 9000))) {
      Thread t = new Thread(() -> answerOnce(server), "echo-server");
      t.setDaemon(true);
      t.start();
      String line = request(client, VIP, 9000);
      assertEquals("echo from " + SUBNET + "11", line.split(" to ")[0], line);
      t.join(10_000);
    }
    String metrics = proxy.dataPlane().metrics().scrape();
    assertTrue(
        metrics.contains("destination_service=\"echo.default\"")
            && metrics.contains("source_workload=\"client\""),
        metrics);

    runner.del(list, clientAtt);
    runner.del(list, clientAtt); // twice: still fine
    String after = client.exec("iptables-save", "-t", "nat");
    assertFalse(after.contains("15001"), after);
    String links = client.exec("ip", "-o", "link");
    assertFalse(links.contains("eth0"), links);
    assertFalse(Files.exists(tmp.resolve("ipam/nmtest/" + SUBNET + "10")), "IP still allocated");
    assertTrue(Files.exists(tmp.resolve("ipam/nmtest/" + SUBNET + "11")), "echo's IP is kept");
    assertFalse(Files.exists(tmp.resolve("run/ctr-client.json")));
    try (AgentClient agent = new AgentClient(tmp.resolve("agent.sock"), Duration.ofSeconds(10))) {
      List<String> uids = agent.listPods().getPodsList().stream().map(Pod::getUid).toList();
      assertEquals(List.of("uid-echo"), uids);
    }
  }

  private static ServerSocketChannel listenIn(TestNetns pod, int port) throws IOException {
    try (NetworkNamespace ns = NetworkNamespace.open(pod.path());
        NetworkNamespace.Scope in = ns.enter()) {
      ServerSocketChannel s = ServerSocketChannel.open();
      s.bind(new InetSocketAddress("0.0.0.0", port));
      return s;
    }
  }

  private static void answerOnce(ServerSocketChannel server) {
    try (SocketChannel c = server.accept()) {
      InetSocketAddress local = (InetSocketAddress) c.getLocalAddress();
      InetSocketAddress peer = (InetSocketAddress) c.getRemoteAddress();
      String line =
          "echo from "
              + local.getAddress().getHostAddress()
              + " to "
              + peer.getAddress().getHostAddress()
              + "\n";
      c.write(ByteBuffer.wrap(line.getBytes(StandardCharsets.UTF_8)));
    } catch (IOException e) {
      // The client's assertion reports the failure.
    }
  }

  private static String request(TestNetns pod, String ip, int port) throws IOException {
    SocketChannel ch;
    try (NetworkNamespace ns = NetworkNamespace.open(pod.path());
        NetworkNamespace.Scope in = ns.enter()) {
      ch = SocketChannel.open();
    }
    try (ch) {
      ch.socket().setSoTimeout(30_000);
      ch.connect(new InetSocketAddress(ip, port));
      return new String(ch.socket().getInputStream().readAllBytes(), StandardCharsets.UTF_8)
          .strip();
    }
  }
}
