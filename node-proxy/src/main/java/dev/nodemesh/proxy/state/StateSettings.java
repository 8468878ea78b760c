package dev.nodemesh.proxy.state;

import java.nio.file.Path;

/**
 * Where the proxy keeps its state on the node ({@code --state-dir}).
 *
 * @param dir the directory of the saved config snapshot; created when missing. On a cluster a
 *     hostPath, so the snapshot outlives the proxy's container (and, under {@code /var/lib}, a
 *     reboot).
 */
public record StateSettings(Path dir) {

  /** {@code state} beside the agent socket: {@code /var/run/nodemesh/state} for the default. */
  public static StateSettings besideAgentSocket(Path agentSocket) {
    Path parent = agentSocket.toAbsolutePath().getParent();
    return new StateSettings((parent == null ? Path.of("/") : parent).resolve("state"));
  }
}
