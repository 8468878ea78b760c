package dev.nodemesh.cni.plugin;

import dev.nodemesh.model.cni.AgentWire.Pod;
import java.util.List;

/**
 * The node agent as the plugin needs it. Every failure (socket missing, agent down, refusal,
 * deadline) is an {@link AgentException}: the plugin turns it into "try again later" on ADD and
 * CHECK, and ignores it on DEL.
 */
public interface Agent extends AutoCloseable {
  /** Enrols the pod and returns once the agent acked; true if it was already enrolled. */
  boolean addPod(Pod pod) throws AgentException;

  /** Removes the pod; true if the agent had it. */
  boolean delPod(String uid, String netnsPath) throws AgentException;

  List<Pod> listPods() throws AgentException;

  @Override
  void close();

  /** The agent could not be reached or refused the call. */
  final class AgentException extends Exception {
    private static final long serialVersionUID = 1L;

    public AgentException(String message, Throwable cause) {
      super(message, cause);
    }

    public AgentException(String message) {
      super(message);
    }
  }
}
