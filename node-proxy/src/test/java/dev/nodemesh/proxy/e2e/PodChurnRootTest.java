package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Pods come and go; the proxy's per-pod state goes with them. Fifty pods are enrolled one after the
 * other, each makes an L7 request (HTTPRoute) and an L4 connection through the proxy, which
 * registers series labelled with it, pools an upstream connection made in its namespace and counts
 * against its budget; then each is removed (DelPod). Afterwards the meter registry holds exactly
 * the series it held before, and the upstream pools and budget entries are as many as before.
 *
 * <p>Both interception modes: the requests are curl run as a process of the pod ({@link
 * TestNode#curl}). In eBPF mode the per-pod state also lives outside the pods' namespaces (the
 * netns cookie's registration, the inbound address and listener entries, the pinned sk_lookup
 * link): each pod adds one of each and its DelPod takes them away again. iptables mode keeps all of
 * its per-pod state (the rules) inside the pod's namespace.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class PodChurnRootTest {
  static final String VIP = "10.97.0.31";
  static final int PODS = 50;

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("client", 10);
    node.addPod("web-1", 11);
    node.serveHttp("web-1", 8080);
    node.writeConfig("mesh.yaml", Mesh.routedWeb(VIP));
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    // web-1 stays unenrolled: requests reach it directly from the caller's namespace, so every
    // caller gets pools of its own.
    node.enrol("client");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  private Set<String> meterIds(DataPlane plane) {
    Set<String> ids = new TreeSet<>();
    plane.metrics().registry().getMeters().forEach(m -> ids.add(m.getId().toString()));
    return ids;
  }

  private void traffic(String pod) throws Exception {
    // One curl, two transfers: L7 to the VIP, then L4 straight to the pod's IP (not the VIP), so
    // the relay, not L7, carries it. A status line per transfer.
    String[] codes =
        node.curl(
                pod,
                "-s",
                "-w",
                "%{http_code}\\n",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "http://" + VIP + "/",
                "-o",
                "/dev/null",
                "http://" + TestNode.SUBNET + "11:8080/")
            .trim()
            .split("\n");
    assertEquals(List.of("200", "200"), List.of(codes), pod + ": L7, L4");
  }

  /**
   * The per-pod interception state outside the pods' namespaces: in eBPF mode the entries of the
   * registration, inbound address and inbound listener maps and the pinned inbound links; iptables
   * mode has none.
   */
  private List<Integer> captureState() throws IOException {
    if (!(node.proxy().dataPlane().interception() instanceof EbpfInterception ebpf)) {
      return List.of();
    }
    InterceptionPrograms programs = ebpf.programs();
    int links;
    try (Stream<Path> pins = Files.list(programs.pinDir())) {
      links =
          (int) pins.filter(p -> p.getFileName().toString().startsWith("link_inbound_")).count();
    }
    return List.of(
        programs.entries(InterceptionPrograms.POD_NETNS),
        programs.entries(InterceptionPrograms.INBOUND_PODS),
        programs.entries(InterceptionPrograms.INBOUND_LISTENER),
        links);
  }

  /** {@code state} with one more of each entry, as one more enrolled single-address pod has. */
  private static List<Integer> plusOnePod(List<Integer> state) {
    return state.stream().map(n -> n + 1).toList();
  }

  @Test
  void enrollingAndRemovingFiftyPodsLeavesRegistryPoolsAndBudgetsAsBefore() throws Exception {
    DataPlane plane = node.proxy().dataPlane();
    traffic("client"); // the Service's own meters and the client's pool exist from here on
    Set<String> meters = meterIds(plane);
    int pools = plane.upstreams().http().poolCount();
    int budgets = plane.budgets().size();
    List<Integer> capture = captureState();
    assertTrue(pools >= 1, "the client's request pooled its upstream connection");
    if (mode == Interception.EBPF) {
      assertEquals(List.of(1, 1, 1, 1), capture, "the client's registration, address, link");
    }

    for (int i = 0; i < PODS; i++) {
      String pod = "churn-" + i;
      node.addPod(pod, 100 + i);
      assertTrue(node.enrol(pod).isInitialized());
      traffic(pod);
      assertTrue(
          meterIds(plane).stream().anyMatch(id -> id.contains("source_workload=" + pod)),
          "series of " + pod);
      assertEquals(budgets + 1, plane.budgets().size());
      assertEquals(plusOnePod(capture), captureState(), pod + "'s interception state");
      node.agent().delPod("uid-" + pod);
      node.removePod(pod);
    }

    assertEquals(meters, meterIds(plane));
    assertEquals(pools, plane.upstreams().http().poolCount());
    assertEquals(budgets, plane.budgets().size());
    assertEquals(capture, captureState(), "interception state");
    traffic("client"); // and the proxy still serves
  }
}
