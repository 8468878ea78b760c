package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/** Reads a Pod into a {@link Workload}: identity, labels, pod IPs and named container ports. */
public final class WorkloadParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public WorkloadParser(String file, List<String> errors) {
    super(file, errors);
  }

  /** Returns the workload, or null after recording why the Pod is invalid. */
  public @Nullable Workload parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("Pod", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    String uid = text(meta, "uid", "metadata.uid");
    Map<String, String> labels = stringMap(meta.path("labels"), "metadata.labels");
    JsonNode spec = doc.path("spec");
    String serviceAccount = text(spec, "serviceAccountName", "spec.serviceAccountName");
    String nodeName = text(spec, "nodeName", "spec.nodeName");
    Map<String, Integer> namedPorts = namedPorts(spec);
    List<InetAddress> ips = podIps(doc.path("status"));
    if (id == null || errors.size() > before) {
      return null;
    }
    return new Workload(
        uid == null ? id.toString() : uid,
        id.name(),
        id.namespace(),
        ips,
        labels,
        serviceAccount == null ? "default" : serviceAccount,
        nodeName == null ? "" : nodeName,
        namedPorts);
  }

  private List<InetAddress> podIps(JsonNode status) {
    int before = errors.size();
    List<InetAddress> ips = new ArrayList<>();
    JsonNode list = status.path("podIPs");
    if (array(list, "status.podIPs")) {
      for (int i = 0; i < list.size(); i++) {
        String path = "status.podIPs[" + i + "].ip";
        String text = text(list.get(i), "ip", path);
        if (text == null) {
          error(path, "is required");
        }
        InetAddress ip = ip(text, path);
        if (ip != null) {
          ips.add(ip);
        }
      }
    }
    String single = text(status, "podIP", "status.podIP");
    InetAddress podIp = ip(single, "status.podIP");
    if (podIp != null) {
      if (ips.isEmpty()) {
        ips.add(podIp);
      } else if (!ips.get(0).equals(podIp)) {
        // Kubernetes keeps podIP == podIPs[0]; a mismatch means a hand edit went half-way.
        error("status.podIP", quote(single) + " differs from status.podIPs[0]");
      }
    }
    if (ips.isEmpty() && errors.size() == before) {
      error("status.podIP", "is required (or status.podIPs)");
    }
    return ips;
  }

  private Map<String, Integer> namedPorts(JsonNode spec) {
    Map<String, Integer> named = new HashMap<>();
    JsonNode containers = spec.path("containers");
    if (!array(containers, "spec.containers")) {
      return named;
    }
    for (int c = 0; c < containers.size(); c++) {
      String cpath = "spec.containers[" + c + "].ports";
      JsonNode ports = containers.get(c).path("ports");
      if (!array(ports, cpath)) {
        continue;
      }
      for (int p = 0; p < ports.size(); p++) {
        String ppath = cpath + "[" + p + "]";
        JsonNode port = ports.get(p);
        Integer number = port(port, "containerPort", ppath + ".containerPort", true);
        String name = text(port, "name", ppath + ".name");
        String protocol = text(port, "protocol", ppath + ".protocol");
        // Non-TCP container ports are legal on a pod (e.g. DNS); they just never match a
        // Service port here, since only TCP Services are supported.
        if (name == null || number == null || !(protocol == null || protocol.equals("TCP"))) {
          continue;
        }
        if (checkPortName(name, ppath + ".name") && named.put(name, number) != null) {
          error(ppath + ".name", quote(name) + " is declared twice in this pod");
        }
      }
    }
    return named;
  }
}
