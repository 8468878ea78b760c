package dev.nodemesh.cni.plugin;

import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.cni.agent.AgentClient;
import io.grpc.StatusRuntimeException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;

/** The node agent over its Unix socket, through the node proxy's own {@link AgentClient}. */
final class GrpcAgent implements Agent {
  private final Path socket;
  private final AgentClient client;

  private GrpcAgent(Path socket, AgentClient client) {
    this.socket = socket;
    this.client = client;
  }

  /**
   * Fails at once when the socket file is missing (node proxy not running yet) rather than after
   * the deadline.
   */
  static Agent open(Path socket, Duration deadline) throws AgentException {
    if (!Files.exists(socket)) {
      throw new AgentException(
          "node agent socket " + socket + " does not exist: is the nodemesh node proxy running?");
    }
    return new GrpcAgent(socket, new AgentClient(socket, deadline));
  }

  @Override
  public boolean addPod(Pod pod) throws AgentException {
    try {
      return client.addPod(pod).getAlreadyEnrolled();
    } catch (StatusRuntimeException e) {
      throw failed("AddPod", e);
    }
  }

  @Override
  public boolean delPod(String uid, String netnsPath) throws AgentException {
    try {
      return client
          .stub()
          .delPod(DelPodRequest.newBuilder().setUid(uid).setNetnsPath(netnsPath).build())
          .getWasEnrolled();
    } catch (StatusRuntimeException e) {
      throw failed("DelPod", e);
    }
  }

  @Override
  public List<Pod> listPods() throws AgentException {
    try {
      return client.listPods().getPodsList();
    } catch (StatusRuntimeException e) {
      throw failed("ListPods", e);
    }
  }

  private AgentException failed(String call, StatusRuntimeException e) {
    // Code, description and the cause's message: a runtime logs this, a stack trace is noise.
    io.grpc.Status st = e.getStatus();
    Throwable cause = st.getCause();
    return new AgentException(
        "node agent at "
            + socket
            + ": "
            + call
            + " failed: "
            + st.getCode()
            + (st.getDescription() == null ? "" : " " + st.getDescription())
            + (cause == null ? "" : " (" + cause.getMessage() + ")"),
        e);
  }

  @Override
  public void close() {
    client.close();
  }
}
