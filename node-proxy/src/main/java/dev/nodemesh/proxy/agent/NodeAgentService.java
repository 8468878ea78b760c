package dev.nodemesh.proxy.agent;

import com.google.common.net.InetAddresses;
import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.DelPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.api.agent.v1.SnapshotRequest;
import dev.nodemesh.api.agent.v1.SnapshotResponse;
import dev.nodemesh.model.cni.AgentWire;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Future;
import java.util.function.Consumer;

/**
 * The node agent's gRPC service, and the same AddPod/DelPod/ListPods for the CNI plugin's framed
 * socket ({@link FramedAgentServer}): one validation, one agent thread, the same status names.
 * Validates each request whole before acting (a malformed pod is INVALID_ARGUMENT naming the field,
 * and nothing is touched), then runs it on the agent's single thread so enrolments never
 * interleave. Replies only after the work is done: an ack means the pod's interception is in place.
 */
public final class NodeAgentService extends NodeAgentGrpc.NodeAgentImplBase
    implements FramedAgentServer.Handler {
  private final Enroller enroller;
  private final ExecutorService agentThread;

  public NodeAgentService(Enroller enroller, ExecutorService agentThread) {
    this.enroller = enroller;
    this.agentThread = agentThread;
  }

  @Override
  public void addPod(AddPodRequest request, StreamObserver<AddPodResponse> response) {
    Enroller.PodSpec spec;
    try {
      spec = validate(request.getPod(), "pod");
    } catch (IllegalArgumentException e) {
      response.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asException());
      return;
    }
    run(
        response,
        () -> {
          Enroller.Outcome o = enroller.add(spec);
          return AddPodResponse.newBuilder()
              .setAlreadyEnrolled(o == Enroller.Outcome.UNCHANGED)
              .build();
        });
  }

  @Override
  public void delPod(DelPodRequest request, StreamObserver<DelPodResponse> response) {
    if (request.getUid().isEmpty()) {
      response.onError(Status.INVALID_ARGUMENT.withDescription("uid: required").asException());
      return;
    }
    run(
        response,
        () ->
            DelPodResponse.newBuilder()
                .setWasEnrolled(enroller.remove(request.getUid(), request.getNetnsPath()))
                .build());
  }

  @Override
  public void snapshot(SnapshotRequest request, StreamObserver<SnapshotResponse> response) {
    List<Enroller.PodSpec> specs = new ArrayList<>();
    try {
      for (int i = 0; i < request.getPodsCount(); i++) {
        specs.add(validate(request.getPods(i), "pods[" + i + "]"));
      }
    } catch (IllegalArgumentException e) {
      response.onError(Status.INVALID_ARGUMENT.withDescription(e.getMessage()).asException());
      return;
    }
    run(
        response,
        () -> {
          int[] r = enroller.reconcile(specs);
          return SnapshotResponse.newBuilder()
              .setAdded(r[0])
              .setRemoved(r[1])
              .setUnchanged(r[2])
              .build();
        });
  }

  @Override
  public void listPods(ListPodsRequest request, StreamObserver<ListPodsResponse> response) {
    run(
        response,
        () -> {
          ListPodsResponse.Builder b = ListPodsResponse.newBuilder();
          for (EnrolledPod p : enroller.pods()) {
            b.addPods(
                Pod.newBuilder()
                    .setUid(p.uid())
                    .setName(p.name())
                    .setNamespace(p.namespace())
                    .setNetnsPath(p.netnsPath())
                    .addAllIps(p.ips().stream().map(InetAddress::getHostAddress).toList()));
          }
          return b.build();
        });
  }

  /**
   * A call from the framed socket: checked and run exactly as its gRPC twin, failures named by the
   * gRPC status the twin would return.
   */
  @Override
  public void handle(AgentWire.Request request, Consumer<AgentWire.Reply> reply) {
    if (request instanceof AgentWire.AddPod add) {
      Enroller.PodSpec spec;
      try {
        spec = validate(toProto(add.pod()), "pod");
      } catch (IllegalArgumentException e) {
        reply.accept(AgentWire.Reply.error("INVALID_ARGUMENT", String.valueOf(e.getMessage())));
        return;
      }
      runFramed(reply, () -> AgentWire.Reply.ok(enroller.add(spec) == Enroller.Outcome.UNCHANGED));
    } else if (request instanceof AgentWire.DelPod del) {
      if (del.uid().isEmpty()) {
        reply.accept(AgentWire.Reply.error("INVALID_ARGUMENT", "uid: required"));
        return;
      }
      runFramed(reply, () -> AgentWire.Reply.ok(enroller.remove(del.uid(), del.netnsPath())));
    } else {
      runFramed(
          reply,
          () -> {
            List<AgentWire.Pod> pods = new ArrayList<>();
            for (EnrolledPod p : enroller.pods()) {
              pods.add(
                  new AgentWire.Pod(
                      p.uid(),
                      p.name(),
                      p.namespace(),
                      p.netnsPath(),
                      p.ips().stream().map(InetAddress::getHostAddress).toList()));
            }
            return AgentWire.Reply.ok(pods);
          });
    }
  }

  private static Pod toProto(AgentWire.Pod pod) {
    return Pod.newBuilder()
        .setUid(pod.uid())
        .setName(pod.name())
        .setNamespace(pod.namespace())
        .setNetnsPath(pod.netnsPath())
        .addAllIps(pod.ips())
        .build();
  }

  private void runFramed(Consumer<AgentWire.Reply> reply, Callable<AgentWire.Reply> work) {
    Future<?> unused =
        agentThread.submit(
            () -> {
              AgentWire.Reply r;
              try {
                r = work.call();
              } catch (IOException e) {
                r = AgentWire.Reply.error("FAILED_PRECONDITION", String.valueOf(e.getMessage()));
              } catch (Exception e) {
                r = AgentWire.Reply.error("INTERNAL", String.valueOf(e));
              }
              reply.accept(r);
            });
  }

  private <T> void run(StreamObserver<T> response, Callable<T> work) {
    Future<?> unused =
        agentThread.submit(
            () -> {
              try {
                response.onNext(work.call());
                response.onCompleted();
              } catch (IOException e) {
                response.onError(
                    Status.FAILED_PRECONDITION.withDescription(e.getMessage()).asException());
              } catch (Exception e) {
                response.onError(Status.INTERNAL.withDescription(String.valueOf(e)).asException());
              }
            });
  }

  /** Checks every field of a pod; the message names the first bad field. */
  static Enroller.PodSpec validate(Pod pod, String at) {
    require(!pod.getUid().isEmpty(), at + ".uid: required");
    require(!pod.getName().isEmpty(), at + ".name: required");
    require(!pod.getNamespace().isEmpty(), at + ".namespace: required");
    require(
        pod.getNetnsPath().startsWith("/"),
        at + ".netns_path: must be an absolute path, got \"" + pod.getNetnsPath() + "\"");
    require(pod.getIpsCount() > 0, at + ".ips: at least one IP is required");
    List<InetAddress> ips = new ArrayList<>();
    for (int i = 0; i < pod.getIpsCount(); i++) {
      String ip = pod.getIps(i);
      try {
        // Literals only: InetAddress.getByName would resolve a host name.
        ips.add(InetAddresses.forString(ip));
      } catch (IllegalArgumentException e) {
        throw new IllegalArgumentException(
            at + ".ips[" + i + "]: \"" + ip + "\" is not an IP address", e);
      }
    }
    return new Enroller.PodSpec(
        pod.getUid(), pod.getName(), pod.getNamespace(), pod.getNetnsPath(), ips);
  }

  private static void require(boolean ok, String message) {
    if (!ok) {
      throw new IllegalArgumentException(message);
    }
  }
}
