package dev.nodemesh.model.kind;

import dev.nodemesh.api.config.v1.NamedPort;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.config.parse.WorkloadParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;

/**
 * Workloads: read from Pods ({@link #POD}), sent as {@code Workload} resources ({@link #WIRE}). A
 * workload that is not ready travels only to its own node, where inbound traffic still needs to
 * find it; the loader and local mode have no readiness, so their workloads are all ready.
 */
public final class WorkloadKind {
  private WorkloadKind() {}

  public static final ResourceKind<dev.nodemesh.api.config.v1.Workload, Workload> WIRE =
      ResourceKind.builder(
              "Workload",
              dev.nodemesh.api.config.v1.Workload.class,
              dev.nodemesh.api.config.v1.Workload.getDescriptor(),
              Workload.class)
          .decode(WorkloadKind::decode)
          // Ready: the loader and local mode have no readiness; the Kubernetes source encodes
          // its pods' readiness itself (encode(w, ready)).
          .encode(w -> encode(w, true))
          .servesNode((proto, nodeName) -> proto.getReady() || proto.getNode().equals(nodeName))
          .order(Comparator.comparing(Workload::namespace).thenComparing(Workload::name))
          .build();

  public static final YamlKind<Workload> POD =
      new YamlKind<>(
          "Pod",
          "",
          "v1",
          "pods",
          ApiVersions.ANY,
          true,
          (file, errors, doc, label) -> new WorkloadParser(file, errors).parse(doc, label),
          WIRE,
          Workload::id,
          YamlKind::plainName);

  /** The workload as its resource, with the pod's readiness. */
  public static dev.nodemesh.api.config.v1.Workload encode(Workload w, boolean ready) {
    var b =
        dev.nodemesh.api.config.v1.Workload.newBuilder()
            .setUid(w.uid())
            .setName(w.name())
            .setNamespace(w.namespace())
            .setServiceAccount(w.serviceAccount())
            .setNode(w.nodeName())
            .putAllLabels(w.labels())
            .setTunnel(
                w.captured() ? TunnelProtocol.HBONE : TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED)
            .setZone(w.zone())
            .setReady(ready);
    for (InetAddress ip : w.ips()) {
      b.addIps(ip.getHostAddress());
    }
    new TreeMap<>(w.namedPorts())
        .forEach((name, port) -> b.addPorts(NamedPort.newBuilder().setName(name).setPort(port)));
    return b.build();
  }

  static @Nullable Workload decode(ProtoFields f, dev.nodemesh.api.config.v1.Workload w) {
    f.identity(w.getNamespace(), w.getName());
    if (w.getUid().isEmpty()) {
      f.error("uid", "is required");
    }
    List<InetAddress> ips = new ArrayList<>();
    for (int i = 0; i < w.getIpsCount(); i++) {
      InetAddress ip = f.ip(w.getIps(i), "ips[" + i + "]");
      if (ip != null && !ips.contains(ip)) {
        ips.add(ip);
      } else if (ip != null) {
        f.error("ips[" + i + "]", w.getIps(i) + " is listed twice");
      }
    }
    if (w.getIpsCount() == 0) {
      f.error("ips", "at least one IP is required");
    }
    Map<String, Integer> named = new HashMap<>();
    for (int i = 0; i < w.getPortsCount(); i++) {
      NamedPort p = w.getPorts(i);
      String path = "ports[" + i + "]";
      if (f.portName(p.getName(), path + ".name") && named.put(p.getName(), p.getPort()) != null) {
        f.error(path + ".name", "\"" + p.getName() + "\" is declared twice");
      }
      f.port(p.getPort(), path + ".port");
    }
    if (f.failed()) {
      return null;
    }
    return new Workload(
        w.getUid(),
        w.getName(),
        w.getNamespace(),
        ips,
        w.getLabelsMap(),
        w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount(),
        w.getNode(),
        named,
        w.getZone().isEmpty()
            ? w.getLabelsMap().getOrDefault(Workload.ZONE_LABEL, "")
            : w.getZone(),
        // HBONE: a node proxy serves the pod; unspecified: plain TCP, nothing would serve a tunnel.
        w.getTunnel() == TunnelProtocol.HBONE);
  }
}
