package dev.nodemesh.proxy.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent socket's handover between two proxy processes on one node (an upgrade). */
class AgentServerTest {
  @TempDir Path dir;

  @Test
  void aSecondServerTakesThePathOverAndTheFirstLeavesItAlone() throws Exception {
    Path socket = dir.resolve("agent.sock");
    ExecutorService thread = Executors.newSingleThreadExecutor();
    try {
      NodeAgentService service = new NodeAgentService(null, thread);
      AgentServer old = AgentServer.start(socket, service);
      Object oldKey = key(socket);
      assertFalse(old.superseded(), "alone on the path");
      AgentServer fresh = AgentServer.start(socket, service);
      Object freshKey = key(socket);
      assertTrue(old.superseded(), "the old server sees the new one took over (its /ready: 503)");
      assertFalse(fresh.superseded());
      assertFalse(oldKey.equals(freshKey), "the path is the new socket");
      Path framed = dir.resolve("agent.sock.cni");
      assertEquals(framed, fresh.framedSocket());
      Object freshFramedKey = key(framed);
      try (var files = Files.list(dir)) {
        assertEquals(
            List.of("agent.sock", "agent.sock.cni"),
            files.map(p -> p.getFileName().toString()).sorted().toList(),
            "the gRPC and the framed socket, no temporary path left");
      }
      old.close();
      assertTrue(Files.exists(socket), "the old server does not delete the new one's socket");
      assertEquals(freshKey, key(socket));
      assertEquals(freshFramedKey, key(framed), "nor the new one's framed socket");
      fresh.close();
      assertFalse(Files.exists(socket), "the owner deletes its own socket");
      assertFalse(Files.exists(framed), "and its framed socket");
    } finally {
      thread.shutdownNow();
    }
  }

  private static Object key(Path p) throws Exception {
    return Files.readAttributes(p, BasicFileAttributes.class).fileKey();
  }
}
