package dev.nodemesh.control.source;

import dev.nodemesh.api.config.v1.EndpointList;
import dev.nodemesh.api.config.v1.NamedPort;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.proxy.config.AuthorizationPolicy;
import dev.nodemesh.proxy.config.Cidr;
import dev.nodemesh.proxy.config.MeshService;
import dev.nodemesh.proxy.config.PeerAuthentication;
import dev.nodemesh.proxy.config.ServicePort;
import java.net.InetAddress;
import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;

/**
 * The proxy's validated records (what the YAML parser produces for both sources) as {@code
 * nodemesh.config.v1} messages. Lists that have no meaningful order are sorted so equal content
 * always gives an equal message, and so an equal version.
 */
public final class ProtoEncoder {
  private ProtoEncoder() {}

  /** The resource name of every namespaced type: {@code <namespace>/<name>}. */
  public static String name(String namespace, String name) {
    return namespace + "/" + name;
  }

  public static Workload workload(dev.nodemesh.proxy.config.Workload w, boolean ready) {
    Workload.Builder b =
        Workload.newBuilder()
            .setUid(w.uid())
            .setName(w.name())
            .setNamespace(w.namespace())
            .setServiceAccount(w.serviceAccount())
            .setNode(w.nodeName())
            .putAllLabels(w.labels())
            .setTunnel(TunnelProtocol.HBONE)
            .setReady(ready);
    for (InetAddress ip : w.ips()) {
      b.addIps(ip.getHostAddress());
    }
    new TreeMap<>(w.namedPorts())
        .forEach((name, port) -> b.addPorts(NamedPort.newBuilder().setName(name).setPort(port)));
    return b.build();
  }

  /**
   * @param endpointUids the workloads behind a Service without selector (from its EndpointSlices);
   *     ignored when it has a selector
   */
  public static Service service(MeshService s, Collection<String> endpointUids) {
    Service.Builder b = Service.newBuilder().setName(s.name()).setNamespace(s.namespace());
    for (InetAddress vip : s.vips()) {
      b.addVips(vip.getHostAddress());
    }
    for (ServicePort p : s.ports()) {
      dev.nodemesh.api.config.v1.ServicePort.Builder pb =
          dev.nodemesh.api.config.v1.ServicePort.newBuilder()
              .setPort(p.port())
              .setName(p.name())
              .setAppProtocol(p.appProtocol());
      String targetName = p.targetPortName();
      if (targetName != null) {
        pb.setTargetPortName(targetName);
      } else {
        pb.setTargetPort(p.targetPort());
      }
      b.addPorts(pb);
    }
    Map<String, String> selector = s.selector();
    if (!selector.isEmpty()) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(selector));
    } else if (!endpointUids.isEmpty()) {
      b.setEndpointList(
          EndpointList.newBuilder().addAllWorkloadUids(endpointUids.stream().sorted().toList()));
    }
    return b.build();
  }

  public static dev.nodemesh.api.config.v1.AuthorizationPolicy authorizationPolicy(
      AuthorizationPolicy p) {
    var b =
        dev.nodemesh.api.config.v1.AuthorizationPolicy.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setAction(
                p.action() == AuthorizationPolicy.Action.ALLOW
                    ? dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.ALLOW
                    : dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.DENY);
    if (!p.selector().isEmpty()) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(p.selector()));
    }
    // Rule, source and operation order is kept: it has no meaning, but it is what the user wrote,
    // and the same file always gives the same order (so the same version).
    for (AuthorizationPolicy.Rule r : p.rules()) {
      var rb = dev.nodemesh.api.config.v1.AuthorizationPolicy.Rule.newBuilder();
      for (AuthorizationPolicy.Source src : r.from()) {
        rb.addFrom(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Source.newBuilder()
                .addAllPrincipals(src.principals())
                .addAllNotPrincipals(src.notPrincipals())
                .addAllNamespaces(src.namespaces())
                .addAllNotNamespaces(src.notNamespaces())
                .addAllIpBlocks(src.ipBlocks().stream().map(Cidr::toString).toList())
                .addAllNotIpBlocks(src.notIpBlocks().stream().map(Cidr::toString).toList()));
      }
      for (AuthorizationPolicy.Operation op : r.to()) {
        rb.addTo(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Operation.newBuilder()
                .addAllPorts(op.ports())
                .addAllNotPorts(op.notPorts()));
      }
      b.addRules(rb);
    }
    return b.build();
  }

  public static dev.nodemesh.api.config.v1.PeerAuthentication peerAuthentication(
      PeerAuthentication p) {
    var b =
        dev.nodemesh.api.config.v1.PeerAuthentication.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setMode(
                p.mode() == PeerAuthentication.Mode.STRICT
                    ? dev.nodemesh.api.config.v1.PeerAuthentication.Mode.STRICT
                    : dev.nodemesh.api.config.v1.PeerAuthentication.Mode.PERMISSIVE);
    Map<String, String> selector = p.selector();
    if (selector != null) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(selector));
    }
    return b.build();
  }
}
