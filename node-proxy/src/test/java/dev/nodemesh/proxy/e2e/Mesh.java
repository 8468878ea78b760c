package dev.nodemesh.proxy.e2e;

/** The YAML the end-to-end tests serve: a client, three echo pods and one service. */
final class Mesh {
  static final String VIP = "10.97.0.10";
  static final String VIP6 = "fd00:97::10";

  private Mesh() {}

  static String pod(String name, String ip, String app) {
    return pod(name, ip, app, "test-node", "");
  }

  /** A pod on {@code nodeName} running as {@code serviceAccount} (empty: the default one). */
  static String pod(String name, String ip, String app, String nodeName, String serviceAccount) {
    String sa = serviceAccount.isEmpty() ? "" : "\n  serviceAccountName: " + serviceAccount;
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          uid: uid-%s
          labels:
            app: %s
        spec:
          nodeName: %s%s
          containers:
            - name: app
              image: nodemesh/sample-app
              ports:
                - name: http
                  containerPort: 8080
                - name: tcp
                  containerPort: 9000
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, nodeName, sa, ip);
  }

  /** {@link #pod(String, String, String)} with a second, IPv6 address (status.podIPs). */
  static String dualStackPod(String name, String ip, String ip6, String app) {
    return pod(name, ip, app)
        .replace(
            "  podIP: " + ip + "\n",
            "  podIP: " + ip + "\n  podIPs:\n    - ip: " + ip + "\n    - ip: \"" + ip6 + "\"\n");
  }

  static String pods() {
    return pod("client", TestNode.SUBNET + 10, "client")
        + pod("echo-1", TestNode.SUBNET + 11, "echo")
        + pod("echo-2", TestNode.SUBNET + 12, "echo")
        + pod("echo-3", TestNode.SUBNET + 13, "echo");
  }

  static String service(String name, String vip, String selectorApp) {
    return """
        apiVersion: v1
        kind: Service
        metadata:
          name: %s
          namespace: default
        spec:
          clusterIP: %s
          selector:
            app: %s
          ports:
            - name: http
              port: 80
              targetPort: http
              appProtocol: http
            - name: tcp
              port: 9000
              targetPort: 9000
        """
        .formatted(name, vip, selectorApp);
  }

  /** {@link #service} with an IPv4 and an IPv6 cluster IP (spec.clusterIPs, v4 first). */
  static String dualStackService(String name, String vip, String vip6, String selectorApp) {
    return service(name, vip, selectorApp)
        .replace(
            "  clusterIP: " + vip + "\n",
            "  clusterIP: " + vip + "\n  clusterIPs: [" + vip + ", \"" + vip6 + "\"]\n");
  }
}
