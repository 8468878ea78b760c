package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;

/**
 * Decides where an intercepted outbound connection goes, from the snapshot and the original
 * destination alone. Order: a service VIP wins over a pod IP (the snapshot forbids overlap anyway),
 * then a pod IP, then passthrough; before the first config (snapshot version 0) an address in the
 * service range is refused instead of passed through ({@link Route.NoConfig}). Not yet considered:
 * the source workload, policy, locality, and L7 routes; they will be inputs here, not I/O.
 */
public final class OutboundRouter {
  private OutboundRouter() {}

  /**
   * {@link #route(ConfigSnapshot, ServiceRange, InetSocketAddress, LoadBalancer)} with no range.
   */
  public static Route route(
      ConfigSnapshot snapshot, InetSocketAddress originalDst, LoadBalancer loadBalancer) {
    return route(snapshot, ServiceRange.NONE, originalDst, loadBalancer);
  }

  /**
   * Where a connection to {@code originalDst} goes under {@code snapshot}; {@code serviceRange}
   * (the cluster's VIP range, known before any config) only matters while no config is in force.
   */
  public static Route route(
      ConfigSnapshot snapshot,
      ServiceRange serviceRange,
      InetSocketAddress originalDst,
      LoadBalancer loadBalancer) {
    InetAddress ip = originalDst.getAddress();
    if (ip == null) {
      // Only a hostname, never what SO_ORIGINAL_DST returns; nothing in the mesh matches it.
      return new Route.Passthrough(originalDst);
    }
    MeshService service = snapshot.serviceByVip(ip);
    if (service != null) {
      return toService(snapshot, service, ip, originalDst.getPort(), loadBalancer);
    }
    Workload workload = snapshot.workloadByIp(ip);
    if (workload != null) {
      return new Route.ToWorkload(workload, originalDst);
    }
    if (snapshot.version() == 0 && serviceRange.contains(ip)) {
      return new Route.NoConfig(originalDst);
    }
    return new Route.Passthrough(originalDst);
  }

  private static Route toService(
      ConfigSnapshot snapshot,
      MeshService service,
      InetAddress vip,
      int portNumber,
      LoadBalancer loadBalancer) {
    ServicePort port = snapshot.servicePort(vip, portNumber);
    if (port == null) {
      return new Route.UnknownServicePort(service, portNumber);
    }
    return toEndpoint(snapshot, service, port, vip, loadBalancer);
  }

  /**
   * One endpoint of {@code service} for {@code port}, picked by {@code loadBalancer} among those
   * with an IP of {@code vip}'s family and a resolvable target port: {@link Route.ToService} or
   * {@link Route.NoEndpoints}. Also the L7 router's last step, once a route chose the backend.
   */
  public static Route toEndpoint(
      ConfigSnapshot snapshot,
      MeshService service,
      ServicePort port,
      InetAddress vip,
      LoadBalancer loadBalancer) {
    List<Workload> usable = usableEndpoints(snapshot.endpoints(service), port, vip);
    if (usable.isEmpty()) {
      return new Route.NoEndpoints(service, port);
    }
    int index = Objects.checkIndex(loadBalancer.pick(service, usable.size()), usable.size());
    Workload endpoint = usable.get(index);
    // Both non-null: usableEndpoints kept only endpoints where they are.
    InetAddress ip = Objects.requireNonNull(endpoint.ipLike(vip));
    return new Route.ToService(
        service, port, endpoint, new InetSocketAddress(ip, port.targetPortOn(endpoint)));
  }

  /**
   * Endpoints with an IP of the VIP's family and a resolvable target port. Returns the snapshot's
   * own list, without copying, in the usual case where every endpoint qualifies.
   */
  private static List<Workload> usableEndpoints(
      List<Workload> endpoints, ServicePort port, InetAddress vip) {
    List<Workload> usable = null;
    for (int i = 0; i < endpoints.size(); i++) {
      Workload w = endpoints.get(i);
      boolean ok = w.ipLike(vip) != null && port.targetPortOn(w) != 0;
      if (!ok && usable == null) {
        usable = new ArrayList<>(endpoints.subList(0, i));
      } else if (ok && usable != null) {
        usable.add(w);
      }
    }
    return usable == null ? endpoints : usable;
  }
}
