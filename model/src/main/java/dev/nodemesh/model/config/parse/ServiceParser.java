package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.ServicePort;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** Reads a Service into a {@link MeshService}: selector, cluster IPs and ports. */
public final class ServiceParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public ServiceParser(String file, List<String> errors) {
    super(file, errors);
  }

  /** Returns the service, or null after recording why the Service is invalid. */
  public @Nullable MeshService parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("Service", doc, docLabel);
    JsonNode spec = doc.path("spec");
    List<InetAddress> vips = clusterIps(spec);
    List<ServicePort> ports = servicePorts(spec.path("ports"));
    Map<String, String> selector = stringMap(spec.path("selector"), "spec.selector");
    if (id == null || errors.size() > before) {
      return null;
    }
    return new MeshService(id.name(), id.namespace(), vips, ports, selector);
  }

  private List<InetAddress> clusterIps(JsonNode spec) {
    List<String> raw = new ArrayList<>();
    List<String> paths = new ArrayList<>();
    JsonNode list = spec.path("clusterIPs");
    if (!list.isMissingNode() && array(list, "spec.clusterIPs")) {
      for (int i = 0; i < list.size(); i++) {
        String path = "spec.clusterIPs[" + i + "]";
        String value = scalar(list.get(i), path);
        if (value != null) {
          raw.add(value);
          paths.add(path);
        }
      }
    }
    String single = text(spec, "clusterIP", "spec.clusterIP");
    if (single != null) {
      if (raw.isEmpty()) {
        raw.add(single);
        paths.add("spec.clusterIP");
      } else if (!raw.get(0).equals(single)) {
        error("spec.clusterIP", quote(single) + " differs from spec.clusterIPs[0]");
      }
    }
    List<InetAddress> vips = new ArrayList<>();
    for (int i = 0; i < raw.size(); i++) {
      if (raw.get(i).equals("None")) {
        if (raw.size() > 1) {
          error(paths.get(i), "\"None\" (headless) cannot be combined with other cluster IPs");
        }
        continue;
      }
      InetAddress vip = ip(raw.get(i), paths.get(i));
      if (vip != null) {
        vips.add(vip);
      }
    }
    return vips;
  }

  private List<ServicePort> servicePorts(JsonNode list) {
    List<ServicePort> ports = new ArrayList<>();
    if (!array(list, "spec.ports")) {
      return ports;
    }
    Map<Integer, String> seenNumbers = new HashMap<>();
    Map<String, String> seenNames = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      String path = "spec.ports[" + i + "]";
      JsonNode node = list.get(i);
      String protocol = text(node, "protocol", path + ".protocol");
      if (protocol != null && !protocol.equals("TCP")) {
        // The mesh carries TCP; UDP and SCTP ports (kube-dns has UDP 53 beside TCP 53) are left
        // to the cluster's own networking rather than making the whole Service invalid.
        if (!protocol.equals("UDP") && !protocol.equals("SCTP")) {
          error(path + ".protocol", quote(protocol) + " is not TCP, UDP or SCTP");
        }
        continue;
      }
      String name = text(node, "name", path + ".name");
      Integer port = port(node, "port", path + ".port", true);
      String appProtocol = text(node, "appProtocol", path + ".appProtocol");
      JsonNode target = node.path("targetPort");
      Integer targetNumber = null;
      String targetName = null;
      if (target.isTextual()) {
        targetName = target.asText();
        checkPortName(targetName, path + ".targetPort");
      } else if (!target.isMissingNode() && !target.isNull()) {
        targetNumber = port(node, "targetPort", path + ".targetPort", false);
      } else {
        targetNumber = port; // Kubernetes defaults targetPort to port.
      }
      if (port != null) {
        String earlier = seenNumbers.putIfAbsent(port, path);
        if (earlier != null) {
          error(path + ".port", port + " is already used by " + earlier);
        }
      }
      if (name != null && !name.isEmpty()) {
        String earlier = seenNames.putIfAbsent(name, path);
        if (earlier != null) {
          error(path + ".name", quote(name) + " is already used by " + earlier);
        }
      }
      if (port != null && (targetNumber != null || targetName != null)) {
        ports.add(
            new ServicePort(
                name == null ? "" : name,
                port,
                targetNumber == null ? 0 : targetNumber,
                targetName,
                appProtocol == null ? "tcp" : appProtocol));
      }
    }
    return ports;
  }
}
