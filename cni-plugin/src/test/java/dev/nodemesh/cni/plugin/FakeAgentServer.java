package dev.nodemesh.cni.plugin;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.DelPodRequest;
import dev.nodemesh.api.agent.v1.DelPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;

/**
 * A node agent that only remembers pods, served on a real Unix socket so the plugin's gRPC client
 * is exercised as in production. {@link #refuse} makes every call fail like a sick agent.
 */
final class FakeAgentServer extends NodeAgentGrpc.NodeAgentImplBase implements AutoCloseable {
  final Map<String, Pod> pods = new ConcurrentHashMap<>();
  final List<String> calls = new CopyOnWriteArrayList<>();
  volatile boolean refuse;
  private final Server server;
  private final EventLoopGroup group;

  FakeAgentServer(Path socket) throws Exception {
    group = new EpollEventLoopGroup(1);
    server =
        NettyServerBuilder.forAddress(new DomainSocketAddress(socket.toString()))
            .channelType(EpollServerDomainSocketChannel.class)
            .bossEventLoopGroup(group)
            .workerEventLoopGroup(group)
            .addService(this)
            .build()
            .start();
  }

  @Override
  public void addPod(AddPodRequest req, StreamObserver<AddPodResponse> out) {
    calls.add("add " + req.getPod().getUid());
    if (refuse) {
      out.onError(Status.FAILED_PRECONDITION.withDescription("refused").asException());
      return;
    }
    Pod old = pods.put(req.getPod().getUid(), req.getPod());
    out.onNext(AddPodResponse.newBuilder().setAlreadyEnrolled(req.getPod().equals(old)).build());
    out.onCompleted();
  }

  @Override
  public void delPod(DelPodRequest req, StreamObserver<DelPodResponse> out) {
    calls.add("del " + req.getUid());
    if (refuse) {
      out.onError(Status.UNAVAILABLE.withDescription("refused").asException());
      return;
    }
    out.onNext(
        DelPodResponse.newBuilder().setWasEnrolled(pods.remove(req.getUid()) != null).build());
    out.onCompleted();
  }

  @Override
  public void listPods(ListPodsRequest req, StreamObserver<ListPodsResponse> out) {
    calls.add("list");
    out.onNext(ListPodsResponse.newBuilder().addAllPods(pods.values()).build());
    out.onCompleted();
  }

  @Override
  public void close() throws InterruptedException {
    server.shutdownNow();
    server.awaitTermination(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
  }
}
