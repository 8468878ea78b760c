package dev.nodemesh.proxy.config;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * A Kubernetes Service reduced to what routing needs: its virtual IPs, TCP ports, and the label
 * selector that picks its endpoints. A headless Service has no VIPs; a Service without selector
 * selects nothing (its endpoints would be managed by hand, which local mode does not support).
 */
public record MeshService(
    String name,
    String namespace,
    List<InetAddress> vips,
    List<ServicePort> ports,
    Map<String, String> selector) {

  public MeshService {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    vips = List.copyOf(vips);
    ports = List.copyOf(ports);
    selector = Map.copyOf(selector);
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

  /** Kubernetes' rule: same namespace, non-empty selector, every selector label present. */
  public boolean selects(Workload workload) {
    return !selector.isEmpty()
        && namespace.equals(workload.namespace())
        && workload.labels().entrySet().containsAll(selector.entrySet());
  }
}
