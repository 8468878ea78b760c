package dev.nodemesh.scripts.local;

import io.fabric8.kubernetes.api.model.Container;
import io.fabric8.kubernetes.api.model.ContainerPort;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.KubernetesList;
import io.fabric8.kubernetes.api.model.ObjectMeta;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.client.utils.Serialization;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * The pods and services of a local node, read from a directory of Kubernetes-shaped YAML with
 * fabric8's model (the same format a user writes for a cluster).
 *
 * <p>Limits: only Pods (one app container: the first) and Services are used; other kinds are
 * ignored. Pods must carry their IP in {@code status.podIP}: local mode asks host-local for exactly
 * that address, so the YAML the control plane serves and the pods' real addresses agree.
 */
public record Manifest(List<PodSpec> pods, List<ServiceSpec> services) {

  /** The image that means "run the bundled sample app". */
  public static final String SAMPLE_APP_IMAGE = "nodemesh/sample-app";

  /**
   * One pod as local mode needs it.
   *
   * @param nodeName {@code spec.nodeName}, empty when the pod names no node
   */
  public record PodSpec(
      String name, String namespace, String uid, String ip, AppSpec app, String nodeName) {
    public PodSpec(String name, String namespace, String uid, String ip, AppSpec app) {
      this(name, namespace, uid, ip, app, "");
    }
  }

  /** One service's name and VIP. */
  public record ServiceSpec(String name, String namespace, String clusterIp) {}

  /**
   * What runs inside a pod: the sample app (with its ports, -1 when absent), the container's own
   * command, or nothing.
   */
  public sealed interface AppSpec {
    /** Runs {@code SampleApp} with these ports. */
    record SampleApp(int httpPort, int tcpPort) implements AppSpec {}

    /** Runs the container's command and args verbatim inside the pod netns. */
    record Command(List<String> argv) implements AppSpec {}

    /** Just the network namespace (e.g. a client pod that tests exec into). */
    record None() implements AppSpec {}
  }

  /** Reads every *.yaml / *.yml / *.json file under {@code dir} (not recursive), sorted by name. */
  public static Manifest read(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException("not a directory: " + dir);
    }
    List<Path> files;
    try (Stream<Path> s = Files.list(dir)) {
      files =
          s.filter(p -> p.getFileName().toString().matches(".*\\.(ya?ml|json)$")).sorted().toList();
    }
    List<PodSpec> pods = new ArrayList<>();
    List<ServiceSpec> services = new ArrayList<>();
    for (Path file : files) {
      for (Object o : parse(file)) {
        if (o instanceof Pod pod) {
          pods.add(toPod(pod, file));
        } else if (o instanceof Service svc) {
          toService(svc).ifPresent(services::add);
        }
      }
    }
    return new Manifest(List.copyOf(pods), List.copyOf(services));
  }

  private static List<?> parse(Path file) throws IOException {
    String text = Files.readString(file, StandardCharsets.UTF_8);
    if (text.isBlank()) {
      return List.of();
    }
    Object parsed;
    try (InputStream in = Files.newInputStream(file)) {
      parsed = Serialization.unmarshal(in);
    } catch (RuntimeException e) {
      throw new IOException("cannot parse " + file + ": " + e.getMessage(), e);
    }
    // A multi-document file comes back as a List; a `kind: List` as a KubernetesList.
    if (parsed instanceof List<?> list) {
      return list;
    }
    if (parsed instanceof KubernetesList list) {
      return list.getItems();
    }
    return parsed instanceof HasMetadata ? List.of(parsed) : List.of();
  }

  static PodSpec toPod(Pod pod, Path file) throws IOException {
    ObjectMeta meta = pod.getMetadata();
    String name = meta == null ? null : meta.getName();
    if (name == null || name.isBlank()) {
      throw new IOException(file + ": a Pod has no metadata.name");
    }
    String namespace = namespaceOf(meta);
    String ip = pod.getStatus() == null ? null : pod.getStatus().getPodIP();
    if (ip == null || !ip.matches("\\d{1,3}(\\.\\d{1,3}){3}")) {
      throw new IOException(file + ": pod " + name + " needs an IPv4 status.podIP, got " + ip);
    }
    String uid = meta.getUid();
    if (uid == null || uid.isBlank()) {
      // Stable across runs so a re-enrolment of the same pod is a no-op for the agent.
      uid =
          UUID.nameUUIDFromBytes((namespace + "/" + name).getBytes(StandardCharsets.UTF_8))
              .toString();
    }
    String node = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    return new PodSpec(name, namespace, uid, ip, appOf(pod), node == null ? "" : node);
  }

  static AppSpec appOf(Pod pod) {
    List<Container> containers = pod.getSpec() == null ? null : pod.getSpec().getContainers();
    if (containers == null || containers.isEmpty()) {
      return new AppSpec.None();
    }
    Container c = containers.get(0);
    String image = c.getImage() == null ? "" : c.getImage();
    if (image.equals(SAMPLE_APP_IMAGE) || image.startsWith(SAMPLE_APP_IMAGE + ":")) {
      int http = portNamed(c, "http");
      int tcp = portNamed(c, "tcp");
      // A sample-app pod without ports (the example's client) has nothing to serve: it is a
      // place to run curl from, so it only gets its netns.
      return http < 0 && tcp < 0 ? new AppSpec.None() : new AppSpec.SampleApp(http, tcp);
    }
    List<String> argv = new ArrayList<>();
    if (c.getCommand() != null) {
      argv.addAll(c.getCommand());
    }
    if (c.getArgs() != null) {
      argv.addAll(c.getArgs());
    }
    return argv.isEmpty() ? new AppSpec.None() : new AppSpec.Command(List.copyOf(argv));
  }

  private static int portNamed(Container c, String name) {
    List<ContainerPort> ports = c.getPorts();
    if (ports == null) {
      return -1;
    }
    for (ContainerPort p : ports) {
      if (name.equals(p.getName()) && p.getContainerPort() != null) {
        return p.getContainerPort();
      }
    }
    return -1;
  }

  private static java.util.Optional<ServiceSpec> toService(Service svc) {
    ObjectMeta meta = svc.getMetadata();
    String ip = svc.getSpec() == null ? null : svc.getSpec().getClusterIP();
    if (meta == null || meta.getName() == null || ip == null || ip.equalsIgnoreCase("None")) {
      // Headless or nameless services have no VIP to put in a hosts file.
      return java.util.Optional.empty();
    }
    return java.util.Optional.of(new ServiceSpec(meta.getName(), namespaceOf(meta), ip));
  }

  private static String namespaceOf(@Nullable ObjectMeta meta) {
    String ns = meta == null ? null : meta.getNamespace();
    return ns == null || ns.isBlank() ? "default" : ns;
  }

  /** Pod name → IP, for the hosts files. */
  public Map<String, String> podIps() {
    Map<String, String> m = new java.util.LinkedHashMap<>();
    pods.forEach(p -> m.put(p.name(), p.ip()));
    return m;
  }
}
