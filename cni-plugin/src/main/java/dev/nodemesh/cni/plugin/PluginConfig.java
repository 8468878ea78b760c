package dev.nodemesh.cni.plugin;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.cni.PodRecords;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * The nodemesh keys of the plugin's entry in the conflist, all optional:
 *
 * <pre>{@code
 * {"type": "nodemesh",
 *  "agentSocket": "/var/run/nodemesh/agent.sock",
 *  "runDir": "/var/run/nodemesh/cni",
 *  "agentTimeoutSeconds": 15,
 *  "excludedNamespaces": ["kube-system", "nodemesh"],
 *  "excludedPods": ["default/legacy-db"]}
 * }</pre>
 *
 * <p>An excluded pod gets no CNI work at all (ADD only passes {@code prevResult} on). Host-network
 * pods never reach a CNI plugin. Opting out by label or annotation needs the Kubernetes API, which
 * the plugin does not call: list such pods in {@code excludedPods} instead.
 */
public record PluginConfig(
    Path agentSocket,
    Path runDir,
    Duration agentTimeout,
    Set<String> excludedNamespaces,
    Set<String> excludedPods) {
  public static final Path DEFAULT_AGENT_SOCKET = Path.of("/var/run/nodemesh/agent.sock");
  public static final Path DEFAULT_RUN_DIR = Path.of("/var/run/nodemesh/cni");

  /** The same default as the node proxy's and the control plane's capture scope. */
  public static final List<String> DEFAULT_EXCLUDED_NAMESPACES =
      CaptureScope.DEFAULT_EXCLUDED_NAMESPACES;

  public PluginConfig {
    excludedNamespaces = Set.copyOf(excludedNamespaces);
    excludedPods = Set.copyOf(excludedPods);
  }

  /** Reads the nodemesh keys; a key of the wrong type is code 7 naming it. */
  public static PluginConfig from(ObjectNode conf) throws CniError {
    Path socket = path(conf, "agentSocket", DEFAULT_AGENT_SOCKET);
    // Without runDir, the records go where a proxy serving this socket looks without
    // --cni-run-dir (DEFAULT_RUN_DIR for the default socket).
    Path runDir = path(conf, "runDir", PodRecords.defaultDir(socket));
    JsonNode t = conf.path("agentTimeoutSeconds");
    Duration timeout = Duration.ofSeconds(15);
    if (!t.isMissingNode()) {
      if (!t.canConvertToInt() || !t.isNumber() || t.asInt() <= 0) {
        throw invalid("agentTimeoutSeconds", "a positive number of seconds");
      }
      timeout = Duration.ofSeconds(t.asInt());
    }
    List<String> namespaces = strings(conf, "excludedNamespaces", DEFAULT_EXCLUDED_NAMESPACES);
    List<String> pods = strings(conf, "excludedPods", List.of());
    try {
      new CaptureScope(Set.copyOf(namespaces), Set.copyOf(pods));
    } catch (IllegalArgumentException e) {
      throw invalid("excludedPods", String.valueOf(e.getMessage()));
    }
    return new PluginConfig(socket, runDir, timeout, Set.copyOf(namespaces), Set.copyOf(pods));
  }

  /** The pods this plugin leaves alone, as the config's capture scope names them. */
  public CaptureScope scope() {
    return new CaptureScope(excludedNamespaces, excludedPods);
  }

  /** True for pods nodemesh must leave alone (its own, the cluster's, and opted-out ones). */
  public boolean excludes(String namespace, String name) {
    return scope().excludes(namespace, name);
  }

  private static Path path(ObjectNode conf, String key, Path dflt) throws CniError {
    JsonNode n = conf.path(key);
    if (n.isMissingNode()) {
      return dflt;
    }
    if (!n.isTextual() || !n.asText().startsWith("/")) {
      throw invalid(key, "an absolute path");
    }
    return Path.of(n.asText());
  }

  private static List<String> strings(ObjectNode conf, String key, List<String> dflt)
      throws CniError {
    JsonNode n = conf.path(key);
    if (n.isMissingNode()) {
      return dflt;
    }
    if (!n.isArray()) {
      throw invalid(key, "a list of strings");
    }
    List<String> out = new ArrayList<>();
    for (JsonNode e : n) {
      if (!e.isTextual() || e.asText().isEmpty()) {
        throw invalid(key, "a list of non-empty strings");
      }
      out.add(e.asText());
    }
    return out;
  }

  private static CniError invalid(String key, String want) {
    return new CniError(
        CniError.INVALID_NETWORK_CONFIG,
        "invalid nodemesh plugin config",
        key + ": must be " + want);
  }
}
