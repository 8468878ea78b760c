package dev.nodemesh.proxy.testing;

/** The YAML the end-to-end tests serve: a client, three echo pods and one service. */
public final class Mesh {
  public static final String VIP = "10.97.0.10";
  public static final String VIP6 = "fd00:97::10";
  public static final String POOL_VIP = "10.97.0.30";

  private Mesh() {}

  public static String pod(String name, String ip, String app) {
    return pod(name, ip, app, "test-node", "");
  }

  /** A pod on {@code nodeName} running as {@code serviceAccount} (empty: the default one). */
  public static String pod(
      String name, String ip, String app, String nodeName, String serviceAccount) {
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

  /**
   * A pod on test-node at {@link TestNode#SUBNET}{@code host} whose only container port is http
   * (8080), labelled app={@code app}: the traffic-policy tests' pods.
   */
  public static String httpPod(String name, int host, String app) {
    return """
        apiVersion: v1
        kind: Pod
        metadata:
          name: %s
          namespace: default
          uid: uid-%s
          labels: {app: %s}
        spec:
          nodeName: test-node
          containers:
            - name: app
              ports: [{name: http, containerPort: 8080}]
        status:
          podIP: %s
        ---
        """
        .formatted(name, name, app, TestNode.SUBNET + host);
  }

  /** {@link #pod(String, String, String)} with a second, IPv6 address (status.podIPs). */
  public static String dualStackPod(String name, String ip, String ip6, String app) {
    return pod(name, ip, app)
        .replace(
            "  podIP: " + ip + "\n",
            "  podIP: " + ip + "\n  podIPs:\n    - ip: " + ip + "\n    - ip: \"" + ip6 + "\"\n");
  }

  public static String pods() {
    return pod("client", TestNode.SUBNET + 10, "client")
        + pod("echo-1", TestNode.SUBNET + 11, "echo")
        + pod("echo-2", TestNode.SUBNET + 12, "echo")
        + pod("echo-3", TestNode.SUBNET + 13, "echo");
  }

  public static String service(String name, String vip, String selectorApp) {
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
  public static String dualStackService(String name, String vip, String vip6, String selectorApp) {
    return service(name, vip, selectorApp)
        .replace(
            "  clusterIP: " + vip + "\n",
            "  clusterIP: " + vip + "\n  clusterIPs: [" + vip + ", \"" + vip6 + "\"]\n");
  }

  /**
   * Service "pool" on {@link #POOL_VIP} (HTTP on port 80, pods labelled app=pool), the
   * traffic-policy tests' target.
   */
  public static final String POOL_SERVICE =
      """
      apiVersion: v1
      kind: Service
      metadata: {name: pool, namespace: default}
      spec:
        clusterIP: %s
        selector: {app: pool}
        ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
      """
          .formatted(POOL_VIP);

  /** An HTTPRoute for "pool": /retry retries 503 twice, everything else goes straight through. */
  public static final String POOL_ROUTE =
      """
      apiVersion: gateway.networking.k8s.io/v1
      kind: HTTPRoute
      metadata: {name: pool, namespace: default}
      spec:
        parentRefs: [{group: "", kind: Service, name: pool, port: 80}]
        rules:
          - matches: [{path: {type: PathPrefix, value: /retry}}]
            backendRefs: [{name: pool, port: 80}]
            retry: {codes: [503], attempts: 2}
          - backendRefs: [{name: pool, port: 80}]
      """;

  /**
   * Service {@code name} on {@code vip} selecting app={@code app}: HTTP on port 80 to the pods'
   * 8080, plus {@code morePorts} (each a flow-style port, e.g. {@code "{name: tcp, port: 9000,
   * targetPort: 9000}"}); ends with a document separator.
   */
  public static String httpService(String name, String vip, String app, String... morePorts) {
    StringBuilder ports = new StringBuilder();
    for (String p : morePorts) {
      ports.append("\n    - ").append(p);
    }
    return """
        apiVersion: v1
        kind: Service
        metadata: {name: %s, namespace: default}
        spec:
          clusterIP: %s
          selector: {app: %s}
          ports:
            - {name: http, port: 80, targetPort: 8080, appProtocol: http}%s
        ---
        """
        .formatted(name, vip, app, ports);
  }

  /** An HTTPRoute attached to Service {@code service}'s port 80 that sends everything to it. */
  public static String httpRoute(String service) {
    return """
        apiVersion: gateway.networking.k8s.io/v1
        kind: HTTPRoute
        metadata: {name: %s, namespace: default}
        spec:
          parentRefs: [{group: "", kind: Service, name: %s, port: 80}]
          rules: [{backendRefs: [{name: %s, port: 80}]}]
        ---
        """
        .formatted(service, service, service);
  }

  /**
   * The smallest L7 mesh: pod client (.10) and Service web on {@code vip}, with an HTTPRoute, whose
   * one endpoint web-1 (.11) serves HTTP on 8080.
   */
  public static String routedWeb(String vip) {
    return httpPod("client", 10, "client")
        + httpPod("web-1", 11, "web")
        + httpService("web", vip, "web")
        + httpRoute("web");
  }

  /** AuthorizationPolicy deny-admin: requests to pods labelled app=web whose path is /admin*. */
  public static final String DENY_ADMIN_TO_WEB =
      """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: deny-admin, namespace: default}
      spec:
        selector: {matchLabels: {app: web}}
        action: DENY
        rules:
          - to: [{paths: ["/admin*"]}]
      ---
      """;
}
