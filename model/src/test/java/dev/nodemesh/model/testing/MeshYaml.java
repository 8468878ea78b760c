package dev.nodemesh.model.testing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Writes small Pods and Services as YAML, in flow style so a test reads as a table. Shared by the
 * config, outbound and inbound tests, which all build their snapshots through the real loader.
 */
public final class MeshYaml {
  private MeshYaml() {}

  /**
   * A Pod. {@code ips}: comma-separated, first is also status.podIP. {@code labels}, {@code ports}:
   * YAML flow text such as {@code "{app: echo}"} and {@code "[{name: http, containerPort: 8080}]"}.
   */
  public static String pod(String namespace, String name, String ips, String labels, String ports) {
    StringBuilder podIps = new StringBuilder();
    for (String ip : ips.split(",")) {
      podIps.append(podIps.length() == 0 ? "" : ", ").append("{ip: \"").append(ip).append("\"}");
    }
    return "apiVersion: v1\nkind: Pod\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + ", labels: " + labels + "}\n")
        + ("spec: {nodeName: node-1, containers: [{name: app, image: nodemesh/sample-app, ports: "
            + ports
            + "}]}\n")
        + ("status: {podIP: \"" + ips.split(",")[0] + "\", podIPs: [" + podIps + "]}\n");
  }

  /** A Service. {@code clusterIps}: YAML flow list; {@code selector}, {@code ports}: flow text. */
  public static String service(
      String namespace, String name, String clusterIps, String selector, String ports) {
    return "apiVersion: v1\nkind: Service\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + "}\n")
        + ("spec: {clusterIPs: " + clusterIps + ", selector: " + selector + ", ports: " + ports)
        + "}\n";
  }

  /** A {@code security.nodemesh.dev} AuthorizationPolicy; {@code spec}: YAML flow text. */
  public static String authorizationPolicy(String namespace, String name, String spec) {
    return "apiVersion: security.nodemesh.dev/v1alpha1\nkind: AuthorizationPolicy\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + "}\n")
        + ("spec: " + spec + "\n");
  }

  /** A {@code security.nodemesh.dev} PeerAuthentication; {@code spec}: YAML flow text. */
  public static String peerAuthentication(String namespace, String name, String spec) {
    return "apiVersion: security.nodemesh.dev/v1alpha1\nkind: PeerAuthentication\n"
        + ("metadata: {name: " + name + ", namespace: " + namespace + "}\n")
        + ("spec: " + spec + "\n");
  }

  /** Joins objects into one multi-document file body. */
  public static String docs(String... objects) {
    return String.join("---\n", objects);
  }

  public static Path write(Path dir, String file, String yaml) {
    try {
      return Files.writeString(dir.resolve(file), yaml);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** An IP literal as an address, for building records by hand. */
  public static InetAddress ip(String literal) {
    try {
      return InetAddress.getByName(literal);
    } catch (Exception e) {
      throw new AssertionError(e);
    }
  }
}
