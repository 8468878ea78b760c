package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.scripts.local.Manifest.AppSpec;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import dev.nodemesh.scripts.local.Topology.Cidr;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class TopologyTest {
  private static PodSpec pod(String name, String ip, String node) {
    return new PodSpec(name, "default", "u-" + name, ip, new AppSpec.None(), node);
  }

  private static Topology of(PodSpec... pods) {
    return Topology.of(
        new Manifest(List.of(pods), List.of()), "local", "10.96.0.0/16", "10.210.0.0/24");
  }

  private static String error(PodSpec... pods) {
    return assertThrows(IllegalArgumentException.class, () -> of(pods)).getMessage();
  }

  @Test
  void oneNodePerNodeNameSortedWithItsSubnetGatewayAndUnderlayAddress() {
    Topology t =
        of(
            pod("b", "10.213.1.11", "node-2"),
            pod("a", "10.213.0.10", "node-1"),
            pod("c", "10.213.0.11", "node-1"));
    assertEquals(List.of("node-1", "node-2"), t.nodes().stream().map(Topology.Node::name).toList());
    Topology.Node n1 = t.nodes().get(0);
    Topology.Node n2 = t.nodes().get(1);
    assertEquals("10.213.0.0/24", n1.subnet().toString());
    assertEquals("10.213.0.1", n1.gateway());
    assertEquals("10.210.0.1", n1.underlayIp());
    assertEquals("10.210.0.2", n2.underlayIp());
    assertEquals(List.of("a", "c"), n1.pods().stream().map(PodSpec::name).toList());
    assertEquals(1, n2.index());
    assertEquals("10.213.0.0/23", t.podCidr().toString());
    assertEquals(List.of(t.podCidr(), t.serviceCidr()), t.podRoutes(n1));
  }

  @Test
  void aSingleNodeRoutesOnlyTheServiceCidrAndPodsWithoutANodeGoToTheDefault() {
    Topology t = of(pod("a", "10.213.0.10", ""), pod("b", "10.213.0.11", ""));
    assertEquals(1, t.nodes().size());
    assertEquals("local", t.nodes().get(0).name());
    assertEquals(List.of(Cidr.parse("10.96.0.0/16")), t.podRoutes(t.nodes().get(0)));
  }

  @Test
  void theExamplesAreValid() throws Exception {
    Topology basic =
        Topology.of(
            Manifest.read(Path.of("../examples/basic")), "local", "10.96.0.0/16", "10.210.0.0/24");
    assertEquals(List.of("node-1"), basic.nodes().stream().map(Topology.Node::name).toList());
    Topology two =
        Topology.of(
            Manifest.read(Path.of("../examples/two-node")),
            "local",
            "10.96.0.0/16",
            "10.210.0.0/24");
    assertEquals(
        List.of("node-1", "node-2"), two.nodes().stream().map(Topology.Node::name).toList());
    assertEquals(
        List.of("client", "echo-1"),
        two.nodes().get(0).pods().stream().map(PodSpec::name).toList());
  }

  @Test
  void podsOfOneNodeMustShareItsSlash24() {
    String e = error(pod("a", "10.213.0.10", "n1"), pod("b", "10.213.1.10", "n1"));
    assertTrue(e.contains("node n1: pod b (10.213.1.10) is outside 10.213.0.0/24"), e);
  }

  @Test
  void twoNodesCannotShareASubnet() {
    String e = error(pod("a", "10.213.0.10", "n1"), pod("b", "10.213.0.11", "n2"));
    assertTrue(e.contains("nodes n1 and n2 both have pods in 10.213.0.0/24"), e);
  }

  @Test
  void gatewayNetworkAndBroadcastAddressesAreRefused() {
    assertTrue(error(pod("a", "10.213.0.1", "n1")).contains("the node's bridge gateway"));
    assertTrue(error(pod("a", "10.213.0.0", "n1")).contains("network/broadcast"));
    assertTrue(error(pod("a", "10.213.0.255", "n1")).contains("network/broadcast"));
  }

  @Test
  void overlapsWithTheServiceOrUnderlayCidrAreRefused() {
    assertTrue(error(pod("a", "10.96.3.4", "n1")).contains("inside the service CIDR"));
    String e = error(pod("a", "10.210.0.10", "n1"), pod("b", "10.213.0.10", "n2"));
    assertTrue(e.contains("underlay 10.210.0.0/24 overlaps node n1"), e);
    assertThrows(
        IllegalArgumentException.class,
        () ->
            Topology.of(
                new Manifest(List.of(), List.of()), "local", "10.96.0.0/16", "10.210.0.0/24"));
  }

  @Test
  void cidrArithmetic() {
    Cidr c = Cidr.parse("10.213.7.9/16");
    assertEquals("10.213.0.0/16", c.toString());
    assertTrue(c.contains(Topology.parseIp("10.213.255.1")));
    assertTrue(c.overlaps(Cidr.parse("10.0.0.0/8")));
    assertTrue(!c.overlaps(Cidr.parse("10.214.0.0/16")));
    assertEquals("10.213.0.1", c.host(1));
    assertEquals("0.0.0.0/0", Cidr.parse("1.2.3.4/0").toString());
    for (String bad : List.of("10.0.0.0", "10.0.0/8", "10.0.0.256/8", "10.0.0.0/33", "a.b.c.d/8")) {
      assertThrows(IllegalArgumentException.class, () -> Cidr.parse(bad), bad);
    }
  }
}
