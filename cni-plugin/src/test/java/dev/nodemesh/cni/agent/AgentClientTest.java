package dev.nodemesh.cni.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.agent.v1.AddPodRequest;
import dev.nodemesh.api.agent.v1.AddPodResponse;
import dev.nodemesh.api.agent.v1.ListPodsRequest;
import dev.nodemesh.api.agent.v1.ListPodsResponse;
import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import dev.nodemesh.api.agent.v1.Pod;
import io.grpc.Server;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollServerDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** AgentClient against an in-process fake node agent on a real Unix socket. */
class AgentClientTest {
  @TempDir Path dir;
  private Server server;
  private EventLoopGroup group;
  private final Map<String, Pod> enrolled = new LinkedHashMap<>();

  /** Keeps pods by uid; answers already_enrolled for an identical second AddPod. */
  private final class FakeAgent extends NodeAgentGrpc.NodeAgentImplBase {
    @Override
    public void addPod(AddPodRequest req, StreamObserver<AddPodResponse> out) {
      Pod before = enrolled.put(req.getPod().getUid(), req.getPod());
      out.onNext(
          AddPodResponse.newBuilder().setAlreadyEnrolled(req.getPod().equals(before)).build());
      out.onCompleted();
    }

    @Override
    public void listPods(ListPodsRequest req, StreamObserver<ListPodsResponse> out) {
      out.onNext(ListPodsResponse.newBuilder().addAllPods(enrolled.values()).build());
      out.onCompleted();
    }
  }

  @BeforeEach
  void startAgent() throws Exception {
    group = new EpollEventLoopGroup(1);
    server =
        NettyServerBuilder.forAddress(new DomainSocketAddress(dir.resolve("agent.sock").toString()))
            .bossEventLoopGroup(group)
            .workerEventLoopGroup(group)
            .channelType(EpollServerDomainSocketChannel.class)
            .addService(new FakeAgent())
            .build()
            .start();
  }

  @AfterEach
  void stopAgent() throws Exception {
    server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).sync();
  }

  @Test
  void enrolsPodsOverTheUnixSocket() {
    Pod pod =
        Pod.newBuilder()
            .setUid("u1")
            .setName("echo-1")
            .setNamespace("default")
            .setNetnsPath("/var/run/netns/nm1a2b-echo-1")
            .addIps("10.213.0.11")
            .build();
    try (AgentClient agent = new AgentClient(dir.resolve("agent.sock"), Duration.ofSeconds(5))) {
      assertEquals(0, agent.listPods().getPodsCount());
      assertFalse(agent.addPod(pod).getAlreadyEnrolled());
      assertTrue(agent.addPod(pod).getAlreadyEnrolled());
      assertEquals(pod, agent.listPods().getPods(0));
    }
  }

  @Test
  void aMissingSocketFailsWithinTheDeadline() {
    try (AgentClient agent = new AgentClient(dir.resolve("nobody.sock"), Duration.ofSeconds(2))) {
      assertThrows(StatusRuntimeException.class, agent::listPods);
    }
  }
}
