package dev.nodemesh.proxy.agent;

import dev.nodemesh.api.agent.v1.NodeAgentGrpc;
import io.grpc.ManagedChannel;
import io.grpc.netty.shaded.io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.shaded.io.netty.channel.EventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollDomainSocketChannel;
import io.grpc.netty.shaded.io.netty.channel.epoll.EpollEventLoopGroup;
import io.grpc.netty.shaded.io.netty.channel.unix.DomainSocketAddress;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * A client of the node agent over its Unix socket, for local mode, the CNI plugin and tests. Calls
 * carry a deadline so a hung agent is an error, not a hang.
 */
public final class AgentClient implements AutoCloseable {
  private final ManagedChannel channel;
  private final EventLoopGroup group;

  public AgentClient(Path socket) {
    this.group = new EpollEventLoopGroup(1);
    this.channel =
        NettyChannelBuilder.forAddress(new DomainSocketAddress(socket.toString()))
            .eventLoopGroup(group)
            .channelType(EpollDomainSocketChannel.class)
            .usePlaintext()
            .build();
  }

  /** A blocking stub whose calls fail after {@code seconds}. */
  public NodeAgentGrpc.NodeAgentBlockingStub stub(long seconds) {
    return NodeAgentGrpc.newBlockingStub(channel).withDeadlineAfter(seconds, TimeUnit.SECONDS);
  }

  @Override
  public void close() throws InterruptedException {
    channel.shutdownNow();
    channel.awaitTermination(5, TimeUnit.SECONDS);
    group.shutdownGracefully(0, 1, TimeUnit.SECONDS).await(5, TimeUnit.SECONDS);
  }
}
