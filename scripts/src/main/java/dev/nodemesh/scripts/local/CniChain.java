package dev.nodemesh.scripts.local;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.runner.CniRunner;
import dev.nodemesh.model.cni.JsonTrees;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * How local mode attaches pods: the way a container runtime does, through {@link CniRunner} and a
 * conflist per node of Debian's reference {@code bridge} (with {@code isGateway}) and {@code
 * host-local}, with the nodemesh plugin chained last when the node has a proxy. Every plugin runs
 * under {@code ip netns exec <node netns>}, so the bridge and the pods' host-side veths are made in
 * the node's namespace, never the machine's ({@code ip netns exec} also remounts /sys, which the
 * bridge plugin reads).
 *
 * <p>All CNI state stays under {@code <run-dir>/cni/}: {@code bin/} (the nodemesh wrapper), {@code
 * ipam/} (host-local's dataDir), {@code cache/} (the runner's ADD results, libcni's
 * /var/lib/cni/results), {@code pods/} (the nodemesh plugin's records) and the conflists. Nothing
 * is written to /etc/cni or /var/lib/cni.
 */
final class CniChain {
  static final String IFNAME = "eth0";
  static final String CNI_VERSION = "1.0.0";
  private static final Duration PLUGIN_TIMEOUT = Duration.ofSeconds(90);

  private CniChain() {}

  static Path dir(Path runDir) {
    return runDir.resolve("cni");
  }

  /**
   * Where a node's nodemesh plugin records its pods and that node's proxy reads them back on start
   * ({@code --cni-run-dir}): one place computes it for both, so a proxy restarted with the command
   * line it was started with finds every pod (the default beside the agent socket would be shared
   * by every node of the run, as their sockets share the run dir).
   */
  static Path recordsDir(Path runDir, String network) {
    return dir(runDir).resolve("pods").resolve(network).toAbsolutePath();
  }

  /** The bin path for a run: our wrapper directory first, then the reference plugins. */
  static List<Path> binPath(Path runDir, Path referencePlugins) {
    return List.of(dir(runDir).resolve("bin"), referencePlugins);
  }

  /**
   * The node's conflist. host-local hands out from the node's /24 with the bridge as gateway, and
   * installs in each pod a route via that gateway for the other nodes' pods (when there are any)
   * and for the service CIDR, never a default route: nothing can leak to the real network.
   *
   * @param agentSocket the node proxy's agent socket, or null for a node without a proxy
   */
  static ObjectNode conflist(
      String network,
      String bridge,
      Topology topology,
      Topology.Node node,
      Path runDir,
      @Nullable Path agentSocket) {
    ObjectNode list = JsonNodeFactory.instance.objectNode();
    list.put("cniVersion", CNI_VERSION);
    list.put("name", network);
    ArrayNode plugins = list.putArray("plugins");

    ObjectNode br = plugins.addObject();
    br.put("type", "bridge");
    br.put("bridge", bridge);
    br.put("isGateway", true);
    br.put("ipMasq", false);
    ObjectNode ipam = br.putObject("ipam");
    ipam.put("type", "host-local");
    ipam.put("dataDir", dir(runDir).resolve("ipam").toAbsolutePath().toString());
    ObjectNode range = ipam.putArray("ranges").addArray().addObject();
    range.put("subnet", node.subnet().toString());
    range.put("gateway", node.gateway());
    ArrayNode routes = ipam.putArray("routes");
    for (Topology.Cidr dst : topology.podRoutes(node)) {
      // No "gw": the plugins route via the range's gateway, the node's bridge.
      routes.addObject().put("dst", dst.toString());
    }

    if (agentSocket != null) {
      ObjectNode nm = plugins.addObject();
      nm.put("type", "nodemesh");
      nm.put("agentSocket", agentSocket.toAbsolutePath().toString());
      nm.put("runDir", recordsDir(runDir, network).toString());
      nm.put("agentTimeoutSeconds", 15);
    }
    return list;
  }

  /**
   * CNI_ARGS for a pod: the identity fields the nodemesh plugin sends to the node agent, and
   * host-local's {@code IP}, so the pod gets exactly the address its YAML names (and the control
   * plane serves).
   */
  static Map<String, String> args(PodSpec pod) {
    Map<String, String> args = new LinkedHashMap<>();
    args.put("IgnoreUnknown", "1");
    args.put("K8S_POD_NAMESPACE", pod.namespace());
    args.put("K8S_POD_NAME", pod.name());
    args.put("K8S_POD_UID", pod.uid());
    args.put("IP", pod.ip());
    return args;
  }

  static CniRunner runner(List<Path> binPath, Path runDir, String nodeNetns) {
    return new CniRunner(
        binPath,
        List.of("ip", "netns", "exec", nodeNetns),
        dir(runDir).resolve("cache"),
        PLUGIN_TIMEOUT);
  }

  static CniRunner.Attachment attachment(
      String containerId, String podNetns, Map<String, String> args) {
    return new CniRunner.Attachment(containerId, Netns.path(podNetns), IFNAME, args);
  }

  /** Writes a conflist where {@code down} finds it again. */
  static Path writeConflist(Path runDir, ObjectNode conflist) throws IOException {
    Path file = dir(runDir).resolve(conflist.path("name").asText() + ".conflist");
    Files.createDirectories(file.getParent());
    Files.write(
        file, JsonTrees.writePretty(conflist).getBytes(java.nio.charset.StandardCharsets.UTF_8));
    return file;
  }

  static ObjectNode readConflist(Path file) throws IOException {
    try {
      return CniRunner.parseConflist(Files.readAllBytes(file));
    } catch (dev.nodemesh.cni.spec.CniError e) {
      throw new IOException(file + ": " + e.msg(), e);
    }
  }

  /**
   * Puts the plugin named {@code nodemesh} into the run's bin dir: a two-line script that runs the
   * real wrapper (cni-plugin/bin/nodemesh-cni over cni-plugin/target/cni-lib) with this JVM's java,
   * because a plugin's environment, like a runtime's, has no JAVA_HOME to rely on.
   */
  static void installPlugin(Path runDir, Path wrapper) throws IOException {
    Path bin = Files.createDirectories(dir(runDir).resolve("bin"));
    String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
    String script =
        "#!/bin/sh\n# written by nodemesh local up\nNODEMESH_CNI_JAVA='"
            + java
            + "' exec '"
            + wrapper.toAbsolutePath()
            + "' \"$@\"\n";
    Path nm = bin.resolve("nodemesh");
    Files.writeString(nm, script, StandardCharsets.UTF_8);
    Files.setPosixFilePermissions(nm, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /**
   * Finds cni-plugin/bin/nodemesh-cni in the source tree this launcher runs from (its classes or
   * jar are in scripts/target), and checks that the plugin's jars were built next to it.
   */
  static Path locateWrapper() throws IOException {
    Path root;
    try {
      Path code =
          Path.of(CniChain.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      // scripts/target/classes or scripts/target/nodemesh.jar -> the repository root.
      root = code.toAbsolutePath().resolve("../../..").normalize();
    } catch (URISyntaxException | RuntimeException e) {
      throw new IOException("cannot tell where the launcher runs from; pass --cni-plugin", e);
    }
    Path wrapper = root.resolve("cni-plugin/bin/nodemesh-cni");
    if (!Files.isExecutable(wrapper)) {
      throw new IOException(wrapper + " not found; pass --cni-plugin");
    }
    Path lib = root.resolve("cni-plugin/target/cni-lib");
    if (!Files.isDirectory(lib)) {
      throw new IOException(
          lib + " missing: build it with `mvn -pl scripts -am package -DskipTests`");
    }
    return wrapper;
  }
}
