package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code nodemesh proxy --max-connections-per-pod / --loop-lag-unhealthy / --loop-stall-fatal}. */
class IsolationFlagsTest {
  @TempDir Path dir;

  @Test
  void defaultsDeriveTheBudgetAndWatchTheLoops() {
    ProxyCommand p = parse("proxy", "--config-dir", dir.toString());
    assertEquals(0, p.maxConnectionsPerPod);
    assertEquals(Duration.ofSeconds(5), p.loopLagUnhealthy);
    assertEquals(Duration.ofSeconds(30), p.loopStallFatal);
  }

  @Test
  void allCanBeChanged() {
    ProxyCommand p =
        parse(
            "proxy",
            "--config-dir",
            dir.toString(),
            "--max-connections-per-pod=500",
            "--loop-lag-unhealthy=2s",
            "--loop-stall-fatal=0s");
    assertEquals(500, p.maxConnectionsPerPod);
    assertEquals(Duration.ofSeconds(2), p.loopLagUnhealthy);
    assertEquals(Duration.ZERO, p.loopStallFatal);
  }

  @Test
  void aNegativeBudgetOrAStallShorterThanTheLagAreUsageErrors() {
    assertUsageError("--max-connections-per-pod must be >= 0", "--max-connections-per-pod=-1");
    assertUsageError(
        "--loop-stall-fatal must be 0 or at least --loop-lag-unhealthy",
        "--loop-lag-unhealthy=10s",
        "--loop-stall-fatal=5s");
  }

  private void assertUsageError(String message, String... flags) {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(err, true));
    String[] args = new String[flags.length + 3];
    args[0] = "proxy";
    args[1] = "--config-dir";
    args[2] = dir.toString();
    System.arraycopy(flags, 0, args, 3, flags.length);
    assertEquals(2, cl.execute(args));
    assertTrue(err.toString().contains(message), err.toString());
  }

  private static ProxyCommand parse(String... args) {
    CommandLine.ParseResult r = Main.commandLine().parseArgs(args);
    return (ProxyCommand) r.subcommand().commandSpec().userObject();
  }
}
