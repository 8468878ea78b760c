package dev.nodemesh.scripts.local;

import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.util.List;

/**
 * The network between the nodes of a local cluster, standing in for a data centre's: a veth pair
 * between the two node namespaces, or for three and more nodes a bridge in an underlay namespace
 * with one veth per node. Each node gets its {@link Topology.Node#underlayIp()} and a route to
 * every other node's pod /24 via that node's underlay address, so pods talk across nodes without
 * encapsulation, as with a flat-routed CNI (Calico in BGP mode, kindnet).
 *
 * <p>Every link is journalled before it is created and lives in a namespace of the run; nothing is
 * made in the root netns.
 */
final class Underlay {
  private Underlay() {}

  /**
   * Builds the underlay for {@code topology}; {@code nodeNetns.get(i)} is node i's namespace.
   * Nothing to do for a single node.
   */
  static void build(StateFile state, String prefix, Topology topology, List<String> nodeNetns)
      throws IOException {
    List<Topology.Node> nodes = topology.nodes();
    if (nodes.size() < 2) {
      return;
    }
    String len = "/" + topology.underlay().prefixLength();
    if (nodes.size() == 2) {
      String a = Names.underlayLink(prefix, 0);
      String b = Names.underlayLink(prefix, 1);
      state.add(Resource.link(a, nodeNetns.get(0)));
      state.add(Resource.link(b, nodeNetns.get(1)));
      Exec.ip(
          nodeNetns.get(0),
          "link",
          "add",
          a,
          "type",
          "veth",
          "peer",
          "name",
          b,
          "netns",
          nodeNetns.get(1));
    } else {
      String ns = Names.underlayNetns(prefix);
      LocalUp.addNetns(state, ns);
      String bridge = Names.underlayBridge(prefix);
      state.add(Resource.link(bridge, ns));
      Exec.ip(ns, "link", "add", bridge, "type", "bridge");
      Exec.ip(ns, "link", "set", bridge, "up");
      for (Topology.Node n : nodes) {
        String port = Names.underlayPort(prefix, n.index());
        String link = Names.underlayLink(prefix, n.index());
        state.add(Resource.link(port, ns));
        state.add(Resource.link(link, nodeNetns.get(n.index())));
        Exec.ip(
            ns,
            "link",
            "add",
            port,
            "type",
            "veth",
            "peer",
            "name",
            link,
            "netns",
            nodeNetns.get(n.index()));
        Exec.ip(ns, "link", "set", port, "master", bridge, "up");
      }
    }
    for (Topology.Node n : nodes) {
      String ns = nodeNetns.get(n.index());
      String link = Names.underlayLink(prefix, n.index());
      Exec.ip(ns, "addr", "add", n.underlayIp() + len, "dev", link);
      Exec.ip(ns, "link", "set", link, "up");
    }
    for (Topology.Node n : nodes) {
      String ns = nodeNetns.get(n.index());
      String link = Names.underlayLink(prefix, n.index());
      for (Topology.Node other : nodes) {
        if (other.index() != n.index()) {
          Exec.ip(
              ns,
              "route",
              "add",
              other.subnet().toString(),
              "via",
              other.underlayIp(),
              "dev",
              link);
        }
      }
    }
  }
}
