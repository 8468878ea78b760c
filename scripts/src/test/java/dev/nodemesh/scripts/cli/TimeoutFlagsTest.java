package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code nodemesh proxy}'s connection-timeout flags: defaults, changes and errors. */
class TimeoutFlagsTest {
  @TempDir Path dir;

  @Test
  void theDefaultsAreTheProxysDefaults() {
    ProxyCommand p = parse("proxy", "--config-dir", dir.toString());
    assertEquals(
        ConnectionTimeouts.DEFAULT,
        new ConnectionTimeouts(
            p.httpRequestHeaderTimeout,
            p.httpIdleTimeout,
            p.tcpIdleTimeout,
            p.tunnelIdleTimeout,
            p.tunnelHandshakeTimeout,
            p.httpHalfCloseTimeout));
  }

  @Test
  void eachCanBeChangedAndTheTcpOneTurnedOff() {
    ProxyCommand p =
        parse(
            "proxy",
            "--config-dir",
            dir.toString(),
            "--http-request-header-timeout",
            "5s",
            "--http-idle-timeout",
            "90s",
            "--tcp-idle-timeout",
            "0s",
            "--tunnel-idle-timeout",
            "2m",
            "--tunnel-handshake-timeout",
            "3s",
            "--http-half-close-timeout",
            "0s");
    assertEquals(Duration.ofSeconds(5), p.httpRequestHeaderTimeout);
    assertEquals(Duration.ofSeconds(90), p.httpIdleTimeout);
    assertEquals(Duration.ZERO, p.tcpIdleTimeout);
    assertEquals(Duration.ofMinutes(2), p.tunnelIdleTimeout);
    assertEquals(Duration.ofSeconds(3), p.tunnelHandshakeTimeout);
    assertEquals(Duration.ZERO, p.httpHalfCloseTimeout);
  }

  @Test
  void aZeroHttpIdleTimeoutIsAUsageErrorNamingTheFlag() {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(err, true));
    assertEquals(
        2, cl.execute("proxy", "--config-dir", dir.toString(), "--http-idle-timeout", "0s"));
    assertTrue(err.toString().contains("--http-idle-timeout must be positive"), err.toString());
  }

  private static ProxyCommand parse(String... args) {
    CommandLine.ParseResult r = Main.commandLine().parseArgs(args);
    return (ProxyCommand) r.subcommand().commandSpec().userObject();
  }
}
