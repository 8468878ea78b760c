package dev.nodemesh.scripts.local;

import dev.nodemesh.scripts.local.Manifest.PodSpec;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The nodes of a local cluster, derived from the Pods alone: one node per distinct {@code
 * spec.nodeName} (a pod without one goes to the default node), each with the /24 its pods' IPs lie
 * in, the bridge gateway {@code .1} of that /24, and an address on the underlay that joins the
 * nodes. No separate topology file: the YAML a user writes for a cluster already says which pod
 * runs where, and a second file could only disagree with it.
 *
 * <p>Pure: validates and computes, touches nothing, so every rule is tested without root.
 *
 * <p>Limits: IPv4; one /24 per node (host-local hands out from exactly that range); {@code .0},
 * {@code .1} and {@code .255} of a node's /24 are not pod addresses.
 *
 * @param nodes sorted by name; a node's index is its position here
 * @param podCidr the smallest CIDR covering every node's /24: what pods route via their gateway
 */
public record Topology(List<Node> nodes, Cidr podCidr, Cidr serviceCidr, Cidr underlay) {

  /** The host part of a node's /24 that its bridge (the pods' gateway) holds. */
  public static final int GATEWAY_HOST = 1;

  /**
   * One node.
   *
   * @param index position in {@link Topology#nodes()}, used for names, admin ports and addresses
   * @param underlayIp this node's address on the underlay (unused with a single node)
   */
  public record Node(
      String name, int index, Cidr subnet, String gateway, String underlayIp, List<PodSpec> pods) {
    public Node {
      pods = List.copyOf(pods);
    }
  }

  /** An IPv4 prefix. */
  public record Cidr(int address, int prefixLength) {
    public Cidr {
      if (prefixLength < 0 || prefixLength > 32) {
        throw new IllegalArgumentException("prefix length " + prefixLength + " not in 0..32");
      }
      address = address & mask(prefixLength);
    }

    public static Cidr parse(String text) {
      int slash = text.indexOf('/');
      if (slash < 0) {
        throw new IllegalArgumentException("not a CIDR (a.b.c.d/n): " + text);
      }
      int len;
      try {
        len = Integer.parseInt(text.substring(slash + 1));
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not a CIDR (a.b.c.d/n): " + text, e);
      }
      return new Cidr(parseIp(text.substring(0, slash)), len);
    }

    public boolean contains(int ip) {
      return (ip & mask(prefixLength)) == address;
    }

    public boolean overlaps(Cidr other) {
      int len = Math.min(prefixLength, other.prefixLength);
      return (address & mask(len)) == (other.address & mask(len));
    }

    /** The address {@code host} places after the network address. */
    public String host(int host) {
      return formatIp(address + host);
    }

    @Override
    public String toString() {
      return formatIp(address) + "/" + prefixLength;
    }

    static int mask(int len) {
      return len == 0 ? 0 : -1 << (32 - len);
    }
  }

  /**
   * Groups the manifest's pods into nodes and checks that the addresses make a routable cluster.
   *
   * @param defaultNode the node of pods that name none
   * @throws IllegalArgumentException naming the pod or node at fault
   */
  public static Topology of(
      Manifest manifest, String defaultNode, String serviceCidr, String underlayCidr) {
    Cidr services = Cidr.parse(serviceCidr);
    Cidr underlay = Cidr.parse(underlayCidr);
    Map<String, List<PodSpec>> byNode = new TreeMap<>();
    for (PodSpec p : manifest.pods()) {
      String node = p.nodeName().isEmpty() ? defaultNode : p.nodeName();
      byNode.computeIfAbsent(node, n -> new ArrayList<>()).add(p);
    }
    if (byNode.isEmpty()) {
      throw new IllegalArgumentException("no Pods in the manifest: nothing to run");
    }
    List<Node> nodes = new ArrayList<>();
    for (Map.Entry<String, List<PodSpec>> e : byNode.entrySet()) {
      String name = e.getKey();
      PodSpec first = e.getValue().get(0);
      Cidr subnet = new Cidr(parseIp(first.ip()), 24);
      for (PodSpec p : e.getValue()) {
        int ip = parseIp(p.ip());
        if (!subnet.contains(ip)) {
          throw new IllegalArgumentException(
              "node "
                  + name
                  + ": pod "
                  + p.name()
                  + " ("
                  + p.ip()
                  + ") is outside "
                  + subnet
                  + " where pod "
                  + first.name()
                  + " is; local mode gives each node one /24");
        }
        int host = ip - subnet.address();
        if (host == 0 || host == GATEWAY_HOST || host == 255) {
          throw new IllegalArgumentException(
              "pod "
                  + p.name()
                  + ": "
                  + p.ip()
                  + " is reserved ("
                  + (host == GATEWAY_HOST ? "the node's bridge gateway" : "network/broadcast")
                  + ")");
        }
        if (services.contains(ip)) {
          throw new IllegalArgumentException(
              "pod " + p.name() + ": " + p.ip() + " is inside the service CIDR " + services);
        }
      }
      for (Node other : nodes) {
        if (other.subnet().equals(subnet)) {
          throw new IllegalArgumentException(
              "nodes " + other.name() + " and " + name + " both have pods in " + subnet);
        }
      }
      if (subnet.overlaps(services)) {
        throw new IllegalArgumentException(
            "node " + name + ": " + subnet + " overlaps the service CIDR " + services);
      }
      int index = nodes.size();
      nodes.add(
          new Node(
              name,
              index,
              subnet,
              subnet.host(GATEWAY_HOST),
              underlay.host(index + 1),
              e.getValue()));
    }
    if (nodes.size() > 1) {
      if (underlay.overlaps(services)) {
        throw new IllegalArgumentException(
            "underlay " + underlay + " overlaps the service CIDR " + services);
      }
      for (Node n : nodes) {
        if (underlay.overlaps(n.subnet())) {
          throw new IllegalArgumentException(
              "underlay " + underlay + " overlaps node " + n.name() + "'s pods " + n.subnet());
        }
      }
      long room = (1L << (32 - underlay.prefixLength())) - 2;
      if (nodes.size() > room) {
        throw new IllegalArgumentException(
            "underlay " + underlay + " has room for " + room + " nodes, not " + nodes.size());
      }
    }
    return new Topology(List.copyOf(nodes), covering(nodes), services, underlay);
  }

  /** The pod's routes besides its own /24: the other nodes' pods and the services. */
  public List<Cidr> podRoutes(Node node) {
    List<Cidr> routes = new ArrayList<>();
    if (!podCidr.equals(node.subnet())) {
      routes.add(podCidr);
    }
    routes.add(serviceCidr);
    return routes;
  }

  private static Cidr covering(List<Node> nodes) {
    int addr = nodes.get(0).subnet().address();
    int len = 24;
    for (Node n : nodes) {
      while (!new Cidr(addr, len).contains(n.subnet().address())) {
        len--;
      }
    }
    return new Cidr(addr, len);
  }

  static int parseIp(String ip) {
    String[] parts = ip.split("\\.", -1);
    if (parts.length != 4) {
      throw new IllegalArgumentException("not an IPv4 address: " + ip);
    }
    int v = 0;
    for (String part : parts) {
      int b;
      try {
        b = Integer.parseInt(part);
      } catch (NumberFormatException e) {
        throw new IllegalArgumentException("not an IPv4 address: " + ip, e);
      }
      if (b < 0 || b > 255 || part.isEmpty() || part.length() > 3) {
        throw new IllegalArgumentException("not an IPv4 address: " + ip);
      }
      v = (v << 8) | b;
    }
    return v;
  }

  static String formatIp(int ip) {
    return ((ip >>> 24) & 0xff)
        + "."
        + ((ip >>> 16) & 0xff)
        + "."
        + ((ip >>> 8) & 0xff)
        + "."
        + (ip & 0xff);
  }
}
