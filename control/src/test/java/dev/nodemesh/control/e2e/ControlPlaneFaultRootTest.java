package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Replies;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Real pod traffic through a node proxy whose config comes from a control plane over xDS (pods in
 * network namespaces, both interception modes, the client's sockets made in its pod by {@link
 * TestNode#podConnect}): an edit to the YAML reaches the data plane, traffic keeps flowing with the
 * last config while the control plane is down, and a restarted control plane brings the node up to
 * date. Lives in the proxy's e2e package to reuse its harness.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class ControlPlaneFaultRootTest {
  private static final Duration WAIT = Duration.ofSeconds(60);
  @Parameter Interception mode;
  @TempDir Path tmp;

  @Test
  void trafficSurvivesTheControlPlaneAndCatchesUpAfterItReturns() throws Exception {
    try (Interception.Setup setup = mode.setUp();
        TestNode node = TestNode.create(tmp)) {
      node.addStandardMesh();
      node.addPod("echo-4", 14);
      node.serve("echo-4", 8080, TestServer.Mode.NAME);
      ControlPlane cp = start(node.configDir(), 0);
      int port = cp.address().getPort();
      try {
        node.startProxy(
            node.proxyConfig()
                .configDir(null)
                .interception(setup.nextNode())
                .xdsTarget("127.0.0.1:" + port)
                .build());
        SnapshotHolder snapshots = node.proxy().dataPlane().snapshots();
        Await.until(WAIT, "the condition", () -> snapshots.current().workloads().size() == 4);
        node.enrolStandardMesh();
        assertEquals(Set.of("echo-1", "echo-2", "echo-3"), served(node, 6));

        // A new endpoint in the YAML gets traffic.
        node.writeConfig(
            "pods.yaml", Mesh.pods() + Mesh.pod("echo-4", TestNode.SUBNET + 14, "echo"));
        Await.until(WAIT, "the condition", () -> snapshots.current().workloads().size() == 5);
        assertTrue(served(node, 8).contains("echo-4"));

        // The control plane goes away: the proxy keeps serving with what it has.
        cp.close();
        cp = null;
        long version = snapshots.current().version();
        assertEquals(Set.of("echo-1", "echo-2", "echo-3", "echo-4"), served(node, 8));
        assertEquals(version, snapshots.current().version());

        // Back on the same port, the node reconnects and takes the change made meanwhile.
        node.writeConfig("pods.yaml", Mesh.pods());
        cp = start(node.configDir(), port);
        Await.until(WAIT, "the condition", () -> snapshots.current().workloads().size() == 4);
        assertEquals(Set.of("echo-1", "echo-2", "echo-3"), served(node, 6));
      } finally {
        node.stopProxy(); // before the control plane, which it would keep reconnecting to
        if (cp != null) {
          cp.close();
        }
      }
    }
  }

  private static ControlPlane start(Path dir, int port) throws Exception {
    return ControlPlane.start(
        new LocalSource(dir, 50),
        new InetSocketAddress("127.0.0.1", port),
        new InetSocketAddress("127.0.0.1", 0),
        Duration.ofMillis(20));
  }

  private static Set<String> served(TestNode node, int connections) throws Exception {
    Set<String> names = new HashSet<>();
    for (int i = 0; i < connections; i++) {
      names.add(Replies.readLine(node.podConnect("client", Mesh.VIP, 80)).split(" ")[0]);
    }
    return names;
  }
}
