package dev.nodemesh.scripts.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.install.ConfListEdit;
import dev.nodemesh.cni.install.InstallCni;
import dev.nodemesh.cni.plugin.PluginConfig;
import dev.nodemesh.model.capture.CaptureScope;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code nodemesh install-cni}: the DaemonSet's install-cni container. Installs the plugin, chains
 * it into the primary CNI config, then keeps it there until stopped; {@code --uninstall} undoes it.
 * Exit 1 when the primary config is one it refuses to edit (unless watching, where it waits for a
 * config it understands).
 */
@Command(
    name = "install-cni",
    mixinStandardHelpOptions = true,
    description = "Install the nodemesh CNI plugin on this node and keep it chained.")
final class InstallCniCommand implements Callable<Integer> {
  @Option(
      names = "--cni-bin-dir",
      paramLabel = "DIR",
      defaultValue = "/opt/cni/bin",
      description = "CNI plugin binaries (default: ${DEFAULT-VALUE}).")
  Path binDir = Path.of("/opt/cni/bin");

  @Option(
      names = "--cni-conf-dir",
      paramLabel = "DIR",
      defaultValue = "/etc/cni/net.d",
      description = "CNI network configs (default: ${DEFAULT-VALUE}).")
  Path confDir = Path.of("/etc/cni/net.d");

  @Option(
      names = "--plugin-wrapper",
      paramLabel = "FILE",
      defaultValue = "/opt/nodemesh/cni/nodemesh-cni",
      description = "The plugin's launcher script to install (default: ${DEFAULT-VALUE}).")
  Path wrapper = Path.of("/opt/nodemesh/cni/nodemesh-cni");

  @Option(
      names = "--plugin-lib",
      paramLabel = "DIR",
      defaultValue = "/opt/nodemesh/cni/lib",
      description = "The plugin's jars (default: ${DEFAULT-VALUE}).")
  Path lib = Path.of("/opt/nodemesh/cni/lib");

  @Option(
      names = "--java",
      paramLabel = "FILE",
      description = "The host's java for the plugin (linked as nodemesh-lib/java).")
  @Nullable Path java;

  @Option(
      names = "--bundle-java",
      description =
          "Copy the Java runtime this command runs on into the plugin's lib dir and use it (for"
              + " nodes without Java; instead of --java).")
  boolean bundleJava;

  @Option(
      names = "--agent-socket",
      paramLabel = "PATH",
      defaultValue = "/var/run/nodemesh/agent.sock",
      description = "Node agent socket written into the plugin config (default: ${DEFAULT-VALUE}).")
  Path agentSocket = PluginConfig.DEFAULT_AGENT_SOCKET;

  @Option(
      names = "--exclude-namespace",
      paramLabel = "NS",
      description =
          "Namespaces never meshed (repeatable; default: kube-system, nodemesh). Give the control"
              + " plane the same list (nodemesh control --exclude-namespace), or it would expect"
              + " these pods to be served by a node proxy.")
  List<String> excluded = List.of();

  @Option(
      names = "--exclude-pod",
      paramLabel = "NS/NAME",
      description = "Single pods never meshed (repeatable), as the control plane's --exclude-pod.")
  List<String> excludedPods = List.of();

  @Option(names = "--uninstall", description = "Remove the plugin and its config entry, then exit.")
  boolean uninstall;

  @Option(names = "--no-watch", description = "Install once and exit instead of watching.")
  boolean noWatch;

  @Option(
      names = "--train",
      description =
          "Build the plugin's start-up cache (JDK AOT cache; AppCDS before JDK 25) after installing.")
  boolean train;

  @Override
  public Integer call() throws Exception {
    ObjectNode conf = JsonNodeFactory.instance.objectNode();
    conf.put("type", ConfListEdit.TYPE);
    conf.put("agentSocket", agentSocket.toString());
    CaptureScope scope;
    try {
      scope = CaptureScope.of(excluded, excludedPods);
    } catch (IllegalArgumentException e) {
      System.err.println("install-cni: --exclude-pod: " + e.getMessage());
      return 2;
    }
    ArrayNode ns = conf.putArray("excludedNamespaces");
    new TreeSet<>(scope.excludedNamespaces()).forEach(ns::add);
    if (!scope.excludedPods().isEmpty()) {
      ArrayNode pods = conf.putArray("excludedPods");
      new TreeSet<>(scope.excludedPods()).forEach(pods::add);
    }
    InstallCni install =
        new InstallCni(
            new InstallCni.Settings(confDir, binDir, wrapper, lib, conf, java),
            line -> System.err.println("install-cni: " + line));
    if (bundleJava) {
      if (java != null) {
        System.err.println("install-cni: --bundle-java and --java exclude each other");
        return 2;
      }
      install.bundleJava(Path.of(System.getProperty("java.home")));
    }
    if (uninstall) {
      install.uninstall();
      return 0;
    }
    install.installBinaries();
    if (train) {
      Process p =
          new ProcessBuilder(binDir.resolve("nodemesh").toString(), "train").inheritIO().start();
      if (!p.waitFor(5, TimeUnit.MINUTES) || p.exitValue() != 0) {
        System.err.println("install-cni: building the CDS archive failed; the plugin runs without");
      }
    }
    if (noWatch) {
      try {
        InstallCni.Result r = install.insert();
        System.err.println("install-cni: " + r);
        return 0;
      } catch (ConfListEdit.Refused e) {
        System.err.println("install-cni: refusing the primary CNI config: " + e.getMessage());
        return 1;
      }
    }
    install.watch(Duration.ofSeconds(10));
    return 0;
  }
}
