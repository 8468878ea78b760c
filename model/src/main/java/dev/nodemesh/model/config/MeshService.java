package dev.nodemesh.model.config;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * A Kubernetes Service reduced to what routing needs: its virtual IPs, TCP ports, and the label
 * selector that picks its endpoints. A headless Service has no VIPs. A Service without selector
 * selects the workloads whose uids are in {@code endpointUids} (from its EndpointSlices, which are
 * managed by hand then; the control plane sends them, local YAML has none).
 */
public record MeshService(
    String name,
    String namespace,
    List<InetAddress> vips,
    List<ServicePort> ports,
    Map<String, String> selector,
    Set<String> endpointUids) {

  public MeshService {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    vips = List.copyOf(vips);
    ports = List.copyOf(ports);
    selector = Map.copyOf(selector);
    endpointUids = Set.copyOf(endpointUids);
  }

  /** A Service whose endpoints are picked by {@code selector}; the common case. */
  public MeshService(
      String name,
      String namespace,
      List<InetAddress> vips,
      List<ServicePort> ports,
      Map<String, String> selector) {
    this(name, namespace, vips, ports, selector, Set.of());
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /**
   * The port with this number, or null. A linear scan: Services have a handful of ports, and the
   * snapshot's (vip, port) index serves the hot path anyway.
   */
  public @Nullable ServicePort port(int number) {
    for (ServicePort p : ports) {
      if (p.port() == number) {
        return p;
      }
    }
    return null;
  }

  /**
   * Kubernetes' rule: same namespace, and every label of a non-empty selector present; without a
   * selector, the workload's uid is one of {@link #endpointUids}.
   */
  public boolean selects(Workload workload) {
    if (!namespace.equals(workload.namespace())) {
      return false;
    }
    return selector.isEmpty()
        ? endpointUids.contains(workload.uid())
        : workload.labels().entrySet().containsAll(selector.entrySet());
  }
}
