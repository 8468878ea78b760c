package dev.nodemesh.model.kind;

import dev.nodemesh.api.config.v1.EndpointList;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.parse.ServiceParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * Services: read from Kubernetes Services, sent as {@code Service} resources. A Service without
 * selector travels with the workload UIDs of its EndpointSlices, which only the Kubernetes source
 * knows ({@link #encode(MeshService, Collection)}); the loader has none.
 */
public final class ServiceKind {
  private ServiceKind() {}

  public static final ResourceKind<dev.nodemesh.api.config.v1.Service, MeshService> WIRE =
      ResourceKind.builder(
              "Service",
              dev.nodemesh.api.config.v1.Service.class,
              dev.nodemesh.api.config.v1.Service.getDescriptor(),
              MeshService.class)
          .decode(ServiceKind::decode)
          // Without EndpointSlices (the Kubernetes source adds them itself).
          .encode(s -> encode(s, Set.of()))
          .order(Comparator.comparing(MeshService::namespace).thenComparing(MeshService::name))
          .build();

  public static final YamlKind<MeshService> YAML =
      new YamlKind<>(
          "Service",
          "",
          "v1",
          "services",
          ApiVersions.ANY,
          true,
          (file, errors, doc, label) -> new ServiceParser(file, errors).parse(doc, label),
          WIRE,
          MeshService::id,
          YamlKind::plainName);

  /**
   * @param endpointUids the workloads behind a Service without selector (from its EndpointSlices);
   *     ignored when it has a selector
   */
  public static dev.nodemesh.api.config.v1.Service encode(
      MeshService s, Collection<String> endpointUids) {
    var b =
        dev.nodemesh.api.config.v1.Service.newBuilder()
            .setName(s.name())
            .setNamespace(s.namespace());
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

  static @Nullable MeshService decode(ProtoFields f, dev.nodemesh.api.config.v1.Service s) {
    f.identity(s.getNamespace(), s.getName());
    List<InetAddress> vips = new ArrayList<>();
    for (int i = 0; i < s.getVipsCount(); i++) {
      InetAddress vip = f.ip(s.getVips(i), "vips[" + i + "]");
      if (vip != null && !vips.contains(vip)) {
        vips.add(vip);
      } else if (vip != null) {
        f.error("vips[" + i + "]", s.getVips(i) + " is listed twice");
      }
    }
    List<ServicePort> ports = new ArrayList<>();
    Set<Integer> numbers = new HashSet<>();
    for (int i = 0; i < s.getPortsCount(); i++) {
      dev.nodemesh.api.config.v1.ServicePort p = s.getPorts(i);
      String path = "ports[" + i + "]";
      boolean ok = f.port(p.getPort(), path + ".port");
      if (ok && !numbers.add(p.getPort())) {
        f.error(path + ".port", p.getPort() + " is listed twice");
        ok = false;
      }
      String appProtocol = p.getAppProtocol().isEmpty() ? "tcp" : p.getAppProtocol();
      switch (p.getTargetCase()) {
        case TARGET_PORT -> {
          if (f.port(p.getTargetPort(), path + ".target_port") && ok) {
            ports.add(
                ServicePort.numeric(p.getName(), p.getPort(), p.getTargetPort(), appProtocol));
          }
        }
        case TARGET_PORT_NAME -> {
          if (f.portName(p.getTargetPortName(), path + ".target_port_name") && ok) {
            ports.add(
                new ServicePort(p.getName(), p.getPort(), 0, p.getTargetPortName(), appProtocol));
          }
        }
        case TARGET_NOT_SET ->
            f.error(path + ".target", "target_port or target_port_name is required");
      }
    }
    Map<String, String> selector = Map.of();
    Set<String> uids = Set.of();
    switch (s.getEndpointsCase()) {
      case SELECTOR -> {
        selector = s.getSelector().getMatchLabelsMap();
        if (selector.isEmpty()) {
          f.error(
              "selector.match_labels", "an empty selector would select nothing; leave it unset");
        }
      }
      case ENDPOINT_LIST -> uids = Set.copyOf(s.getEndpointList().getWorkloadUidsList());
      case ENDPOINTS_NOT_SET -> {} // no endpoints: connections to it fail, as in Kubernetes
    }
    if (f.failed()) {
      return null;
    }
    return new MeshService(s.getName(), s.getNamespace(), vips, ports, selector, uids);
  }
}
