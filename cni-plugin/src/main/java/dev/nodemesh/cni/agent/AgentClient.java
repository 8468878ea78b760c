package dev.nodemesh.cni.agent;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.DelPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * A blocking client of the node agent ({@code nodemesh.agent.v1.NodeAgent}) over its Unix socket.
 * The CNI plugin enrols pods with it, and so does local mode.
 *
 * <p>Limits: Linux only (epoll domain sockets from grpc-netty-shaded); one event-loop thread; each
 * call carries its own deadline, and the caller decides about retries.
 */
public final class AgentClient implements AutoCloseable {
  private final EventLoopGroup group;
  private final ManagedChannel channel;
  private final Duration deadline;

  /** Connects lazily: the first call dials the socket. */
  public AgentClient(Path socket, Duration deadline) {
    this.group = new EpollEventLoopGroup(1);
    this.channel =
        NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
            .eventLoopGroup(group)
            .channelType(EpollDomainSocketChannel.class)
            .usePlaintext()
            .build();
    this.deadline = deadline;
  }

  /** A stub for any call, with this client's deadline. */
  public NodeAgentGrpc.NodeAgentBlockingStub stub() {
    return NodeAgentGrpc.newBlockingStub(channel)
        .withDeadlineAfter(deadline.toMillis(), TimeUnit.MILLISECONDS);
  }

  /** Enrols a pod; the agent answers only once interception is in place. */
  public AddPodResponse addPod(Pod pod) {
    return stub().addPod(AddPodRequest.newBuilder().setPod(pod).build());
  }

  /** The enrolled pods; also the readiness probe for the agent socket. */
  public ListPodsResponse listPods() {
    return stub().listPods(ListPodsRequest.getDefaultInstance());
  }

  /** Removes a pod; unknown pods succeed (DEL is best-effort and idempotent). */
  public DelPodResponse delPod(String uid) {
    return stub().delPod(DelPodRequest.newBuilder().setUid(uid).build());
  }

  @Override
  public void close() {
    channel.shutdownNow();
    try {
      channel.awaitTermination(2, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS);
  }
}
