package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node proxy with {@code --intercept=ebpf}: programs attached to a cgroup this test creates,
 * pins on a bpffs it mounts. A cgroup hook only sees sockets of processes in the cgroup, so the
 * client pod's app is a python process that joins the cgroup before it connects (the iptables
 * suite's clients are threads of this JVM, which must never join a test cgroup).
 */
@RootTest
class EbpfInterceptionRootTest {
  @TempDir Path tmp;
  private TestNode node;
  private TestCgroup cgroup;
  private TestBpffs bpffs;
  private Path pins;
  private final List<Process> processes = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    cgroup = TestCgroup.create("e2e");
    bpffs = TestBpffs.mount();
    pins = bpffs.path().resolve("nodemesh");
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    for (int i = 1; i <= 3; i++) {
      node.addPod("echo-" + i, 10 + i);
      node.serve("echo-" + i, 8080, TestServer.Mode.NAME);
    }
    node.addPod("outside", 20);
    node.serve("outside", 8080, TestServer.Mode.NAME);
    node.writeConfig("pods.yaml", Mesh.pods());
    node.writeConfig("services.yaml", Mesh.service("echo", Mesh.VIP, "echo"));
    node.startProxy(TransportKind.EPOLL, InterceptionMode.ebpf(cgroup.path(), pins));
    for (String p : new String[] {"client", "echo-1", "echo-2", "echo-3"}) {
      assertFalse(node.enrol(p).getAlreadyEnrolled());
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      for (Process p : processes) {
        p.destroyForcibly();
        p.waitFor(10, TimeUnit.SECONDS);
      }
      node.close();
      // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
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
  void serviceTrafficFromAPodProcessIsSpreadOverEveryEndpoint() throws Exception {
    Map<String, Integer> served = new HashMap<>();
    for (String line : connectFromPod("client", Mesh.VIP, 80, 9)) {
      served.merge(line.split(" ")[0], 1, Integer::sum);
    }
    assertEquals(Map.of("echo-1", 3, "echo-2", 3, "echo-3", 3), served);
    assertTrue(
        node.proxy()
            .dataPlane()
            .metrics()
            .scrape()
            .contains("destination_service=\"echo.default\""));
  }

  @Test
  void nonMeshDestinationPassesThroughFromTheClientsAddress() throws Exception {
    List<String> lines = connectFromPod("client", node.ip("outside"), 8080, 1);
    assertEquals("outside " + node.ip("client"), lines.get(0));
    assertTrue(
        node.proxy().dataPlane().metrics().scrape().contains("destination_workload=\"unknown\""));
  }

  @Test
  void aRemovedPodIsNoLongerIntercepted() throws Exception {
    node.agent().delPod("uid-client");
    // Without interception a service VIP has no backend (nothing answers 10.97.0.10 on the
    // bridge), so the connect fails instead of reaching an echo pod through the proxy.
    List<String> out = connectFromPod("client", Mesh.VIP, 80, 1, true);
    assertTrue(out.get(0).startsWith("error"), out.toString());
  }

  private List<String> connectFromPod(String pod, String ip, int port, int times) throws Exception {
    return connectFromPod(pod, ip, port, times, false);
  }

  /** Each connection's first line, from a python process in the pod's netns and test cgroup. */
  private List<String> connectFromPod(String pod, String ip, int port, int times, boolean mayFail)
      throws Exception {
    String script =
        "import socket\n"
            + "for i in range("
            + times
            + "):\n"
            + "  try:\n"
            + "    s=socket.create_connection(('"
            + ip
            + "',"
            + port
            + "), timeout=5)\n"
            + "    print(s.makefile().readline().strip(), flush=True); s.close()\n"
            + "  except OSError as e:\n"
            + "    print('error', e, flush=True)\n";
    List<String> cmd =
        List.of(
            "sh",
            "-c",
            cgroup.joinCommand() + "ip netns exec " + node.pod(pod).name() + " \"$@\"",
            "sh",
            "/usr/bin/python3",
            "-c",
            script);
    Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
    processes.add(p);
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
      throw new IOException("pod client failed: " + out);
    }
    List<String> lines = out.lines().toList();
    if (!mayFail && lines.stream().anyMatch(l -> l.startsWith("error"))) {
      throw new AssertionError("connections failed: " + lines);
    }
    return lines;
  }
}
