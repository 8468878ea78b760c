package dev.nodemesh.cni.plugin;

import dev.nodemesh.model.cni.AgentWire;
import dev.nodemesh.model.cni.AgentWire.Pod;
import dev.nodemesh.proxy.agent.FramedAgentServer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * A node agent that only remembers pods, served by the node proxy's own {@link FramedAgentServer}
 * on a real Unix socket (the framed one beside {@code socket}), so the plugin's client is exercised
 * as in production. {@link #refuse} makes every call fail like a sick agent.
 */
final class FakeAgentServer implements FramedAgentServer.Handler, AutoCloseable {
  final Map<String, Pod> pods = new ConcurrentHashMap<>();
  final List<String> calls = new CopyOnWriteArrayList<>();
  volatile boolean refuse;
  private final FramedAgentServer server;
  private boolean closed;

  /** {@code socket}: the agent socket as the conflist names it. */
  FakeAgentServer(Path socket) throws IOException {
    server = FramedAgentServer.start(AgentWire.socketFor(socket), this);
  }

  @Override
  public void handle(AgentWire.Request request, Consumer<AgentWire.Reply> reply) {
    if (request instanceof AgentWire.AddPod add) {
      calls.add("add " + add.pod().uid());
      if (refuse) {
        reply.accept(AgentWire.Reply.error("FAILED_PRECONDITION", "refused"));
        return;
      }
      Pod old = pods.put(add.pod().uid(), add.pod());
      reply.accept(AgentWire.Reply.ok(add.pod().equals(old)));
    } else if (request instanceof AgentWire.DelPod del) {
      calls.add("del " + del.uid());
      if (refuse) {
        reply.accept(AgentWire.Reply.error("UNAVAILABLE", "refused"));
        return;
      }
      reply.accept(AgentWire.Reply.ok(pods.remove(del.uid()) != null));
    } else {
      calls.add("list");
      reply.accept(AgentWire.Reply.ok(new ArrayList<>(pods.values())));
    }
  }

  @Override
  public synchronized void close() throws IOException {
    if (!closed) {
      closed = true;
      server.close();
    }
  }
}
