package dev.nodemesh.model.config;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * A meshed pod as the proxy needs it: where it is reachable, who it is (service account), where it
 * runs, and which container ports it names so a Service's named targetPort can be resolved.
 * Readiness is not modelled yet: every workload in a snapshot counts as a ready endpoint.
 *
 * @param uid metadata.uid, or {@code namespace/name} when the YAML has none
 * @param ips at least one; the first of each family is the one connected to
 * @param nodeName empty when the pod is not bound to a node
 * @param namedPorts TCP container port name to port number, over all containers
 * @param zone the topology zone of the workload's node ({@value #ZONE_LABEL}); empty when unknown.
 *     L7 load balancing prefers endpoints in the caller's zone.
 * @param captured true when a node proxy serves this pod (it was enrolled, or will be: its
 *     namespace is in the mesh's capture scope); false for pods outside the mesh, which other nodes
 *     reach directly instead of through an HBONE tunnel nothing would serve, and which {@code
 *     /ready} does not wait for. On the wire: {@code tunnel} HBONE or unspecified.
 */
public record Workload(
    String uid,
    String name,
    String namespace,
    List<InetAddress> ips,
    Map<String, String> labels,
    String serviceAccount,
    String nodeName,
    Map<String, Integer> namedPorts,
    String zone,
    boolean captured) {

  /** The well-known node label naming a zone; a Pod carrying it in local YAML gets that zone. */
  public static final String ZONE_LABEL = "topology.kubernetes.io/zone";

  /** Captured (the default for every source that knows nothing else). */
  public Workload(
      String uid,
      String name,
      String namespace,
      List<InetAddress> ips,
      Map<String, String> labels,
      String serviceAccount,
      String nodeName,
      Map<String, Integer> namedPorts,
      String zone) {
    this(uid, name, namespace, ips, labels, serviceAccount, nodeName, namedPorts, zone, true);
  }

  /** Without an explicit zone: the {@value #ZONE_LABEL} label, if the pod carries one. */
  public Workload(
      String uid,
      String name,
      String namespace,
      List<InetAddress> ips,
      Map<String, String> labels,
      String serviceAccount,
      String nodeName,
      Map<String, Integer> namedPorts) {
    this(
        uid,
        name,
        namespace,
        ips,
        labels,
        serviceAccount,
        nodeName,
        namedPorts,
        labels.getOrDefault(ZONE_LABEL, ""));
  }

  public Workload {
    Objects.requireNonNull(uid, "uid");
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    ips = List.copyOf(ips);
    labels = Map.copyOf(labels);
    Objects.requireNonNull(serviceAccount, "serviceAccount");
    Objects.requireNonNull(nodeName, "nodeName");
    namedPorts = Map.copyOf(namedPorts);
    Objects.requireNonNull(zone, "zone");
    if (ips.isEmpty()) {
      throw new IllegalArgumentException("workload " + namespace + "/" + name + " has no IP");
    }
  }

  /** This workload with {@code captured} replaced. */
  public Workload withCaptured(boolean captured) {
    return new Workload(
        uid, name, namespace, ips, labels, serviceAccount, nodeName, namedPorts, zone, captured);
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** The first IP of the same family (v4/v6) as {@code like}, or null if the pod has none. */
  public @Nullable InetAddress ipLike(InetAddress like) {
    boolean v4 = like instanceof Inet4Address;
    for (InetAddress ip : ips) {
      if ((ip instanceof Inet4Address) == v4) {
        return ip;
      }
    }
    return null;
  }

  /** The container port declared with this name, or null if no container declares it. */
  public @Nullable Integer namedPort(String portName) {
    return namedPorts.get(portName);
  }
}
