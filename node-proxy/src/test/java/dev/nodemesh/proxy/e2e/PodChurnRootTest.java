package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.nio.file.Path;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Pods come and go; the proxy's per-pod state goes with them. Fifty pods are enrolled one after the
 * other, each makes an L7 request (HTTPRoute) and an L4 connection through the proxy, which
 * registers series labelled with it, pools an upstream connection made in its namespace and counts
 * against its budget; then each is removed (DelPod). Afterwards the meter registry holds exactly
 * the series it held before, and the upstream pools and budget entries are as many as before.
 */
@RootTest
class PodChurnRootTest {
  static final String VIP = "10.97.0.31";
  static final int PODS = 50;

  @TempDir Path tmp;
  private TestNode node;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("web-1", 11);
    node.serveHttp("web-1", 8080);
    node.writeConfig("mesh.yaml", Mesh.routedWeb(VIP));
    node.startProxy(TransportKind.EPOLL);
    // web-1 stays unenrolled: requests reach it directly from the caller's namespace, so every
    // caller gets pools of its own.
    node.enrol("client");
  }

  @AfterEach
  void tearDown() throws Exception {
    node.close();
  }

  private Set<String> meterIds(DataPlane plane) {
    Set<String> ids = new TreeSet<>();
    plane.metrics().registry().getMeters().forEach(m -> ids.add(m.getId().toString()));
    return ids;
  }

  private void traffic(String pod) throws Exception {
    String code =
        node.pod(pod)
            .exec(
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "http://" + VIP + "/");
    assertEquals("200", code.trim(), pod);
    // L4: straight to the pod's IP (not the VIP), so the relay, not L7, carries it.
    String l4 =
        node.pod(pod)
            .exec(
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                "http://" + TestNode.SUBNET + "11:8080/");
    assertEquals("200", l4.trim(), pod);
  }

  @Test
  void enrollingAndRemovingFiftyPodsLeavesRegistryPoolsAndBudgetsAsBefore() throws Exception {
    DataPlane plane = node.proxy().dataPlane();
    traffic("client"); // the Service's own meters and the client's pool exist from here on
    Set<String> meters = meterIds(plane);
    int pools = plane.upstreams().http().poolCount();
    int budgets = plane.budgets().size();
    assertTrue(pools >= 1, "the client's request pooled its upstream connection");

    for (int i = 0; i < PODS; i++) {
      String pod = "churn-" + i;
      node.addPod(pod, 100 + i);
      assertTrue(node.enrol(pod).isInitialized());
      traffic(pod);
      assertTrue(
          meterIds(plane).stream().anyMatch(id -> id.contains("source_workload=" + pod)),
          "series of " + pod);
      assertEquals(budgets + 1, plane.budgets().size());
      node.agent().delPod("uid-" + pod);
      node.removePod(pod);
    }

    assertEquals(meters, meterIds(plane));
    assertEquals(pools, plane.upstreams().http().poolCount());
    assertEquals(budgets, plane.budgets().size());
    traffic("client"); // and the proxy still serves
  }
}
