package dev.nodemesh.proxy.e2e;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.DelPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The tests' client of a test node's agent socket. The production client ({@code AgentClient}) is
 * in the CNI plugin module, which this module's tests cannot depend on (the plugin's tests run this
 * module's node agent); this one dials through grpc's {@code unix:} target instead.
 */
final class TestAgent implements AutoCloseable {
  private final ManagedChannel channel;

  TestAgent(Path socket) {
    this.channel =
        Grpc.newChannelBuilder("unix://" + socket, InsecureChannelCredentials.create()).build();
  }

  /** A stub for any call, with a 30 s deadline. */
  NodeAgentGrpc.NodeAgentBlockingStub stub() {
    return NodeAgentGrpc.newBlockingStub(channel).withDeadlineAfter(30, TimeUnit.SECONDS);
  }

  AddPodResponse addPod(Pod pod) {
    return stub().addPod(AddPodRequest.newBuilder().setPod(pod).build());
  }

  ListPodsResponse listPods() {
    return stub().listPods(ListPodsRequest.getDefaultInstance());
  }

  DelPodResponse delPod(String uid) {
    return stub().delPod(DelPodRequest.newBuilder().setUid(uid).build());
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow();
    channel.awaitTermination(2, TimeUnit.SECONDS);
  }
}
