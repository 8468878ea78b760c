package dev.nodemesh.control.source;

/** Small Pods and Services as flow-style YAML, so a test reads as a table. */
final class KubeYaml {
  private KubeYaml() {}

  static String pod(String namespace, String name, String ip, String labels, String ports) {
    return "apiVersion: v1\nkind: Pod\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + ", labels: " + labels + "}\n")
        + ("spec: {nodeName: node-1, containers: [{name: app, image: app, ports: "
            + ports
            + "}]}\n")
        + ("status: {podIP: \"" + ip + "\"}\n");
  }

  static String service(
      String namespace, String name, String clusterIps, String selector, String ports) {
    return "apiVersion: v1\nkind: Service\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + "}\n")
        + ("spec: {clusterIPs: " + clusterIps + ", selector: " + selector + ", ports: " + ports)
        + "}\n";
  }
}
