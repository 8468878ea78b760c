package dev.nodemesh.scripts.local;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What {@code local upgrade-proxy} reads and refuses, without starting anything. */
class LocalUpgradeTest {
  @TempDir Path runDir;

  @Test
  void aProbeAnswerNamesStatusAndProcess() {
    LocalUpgrade.Probe p =
        LocalUpgrade.parse(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\n"
                + "X-Nodemesh-Pid: 4242\r\ncontent-length: 9\r\n\r\nnot ready");
    assertEquals(new LocalUpgrade.Probe(503, 4242, "not ready"), p);
    assertEquals(-1, LocalUpgrade.parse("HTTP/1.1 200 OK\r\n\r\nready\n").pid(), "no header");
    assertNull(LocalUpgrade.parse("HTTP/1.1 200 OK\r\n"), "head not complete");
    assertNull(LocalUpgrade.parse("SSH-2.0-OpenSSH\r\n\r\n"), "not HTTP");
    assertNull(LocalUpgrade.parse("HTTP/1.1 200 OK\r\nx-nodemesh-pid: abc\r\n\r\n"), "bad pid");
  }

  @Test
  void refusesARunDirWithoutARunOrWithoutTheNode() throws Exception {
    IOException none = assertThrows(IOException.class, () -> upgrade(null));
    assertTrue(none.getMessage().contains("nothing recorded"), none.getMessage());

    StateFile state = StateFile.create(runDir, "nmtest", runDir, true);
    state.setNodes(
        List.of(
            new StateFile.NodeRecord(
                "node-1",
                "nmtest.node-1",
                "nmtestb0",
                "10.213.0.0/24",
                "",
                "127.0.0.1:1",
                runDir.resolve("agent-node-1.sock").toString(),
                List.of("client"))),
        List.of());
    IOException unknown = assertThrows(IOException.class, () -> upgrade("node-9"));
    assertTrue(unknown.getMessage().contains("no node node-9"), unknown.getMessage());
    assertTrue(unknown.getMessage().contains("node-1"), "names the nodes there are");
    IOException notRunning = assertThrows(IOException.class, () -> upgrade("node-1"));
    assertTrue(notRunning.getMessage().contains("no running proxy"), notRunning.getMessage());
  }

  private void upgrade(String node) throws Exception {
    new LocalUpgrade(
            new LocalUpgrade.Options(runDir, node, Duration.ofSeconds(1), Duration.ofSeconds(1)),
            new PrintStream(PrintStream.nullOutputStream()))
        .run();
  }
}
