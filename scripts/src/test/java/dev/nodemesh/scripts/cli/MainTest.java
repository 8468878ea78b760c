package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

class MainTest {
  private final StringWriter out = new StringWriter();
  private final StringWriter err = new StringWriter();

  private int run(String... args) {
    CommandLine cl = Main.commandLine();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    return cl.execute(args);
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "control",
        "proxy",
        "cni",
        "install-cni",
        "local",
        "local up",
        "local down",
        "local status",
        "loadgen"
      })
  void everyCommandHasHelp(String command) {
    String[] args = (command + " --help").trim().split(" ");
    assertEquals(0, run(args));
    assertTrue(out.toString().startsWith("Usage: nodemesh"), out.toString());
  }

  @Test
  void missingSubcommandIsAUsageError() {
    assertEquals(2, run());
    assertEquals(2, run("local"));
    assertTrue(err.toString().contains("Missing required subcommand"), err.toString());
  }

  @Test
  void badFlagsAreUsageErrors() {
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--transport=quic"));
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--admin", "nohost"));
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--admin", "127.0.0.1:99999"));
    assertEquals(2, run("proxy")); // --config-dir or --xds is required
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--xds", "127.0.0.1:15010")); // not both
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--access-log-sample", "1.5"));
    assertEquals(2, run("proxy", "--config-dir", "/tmp", "--access-log-sample", "half"));
    assertEquals(2, run("control")); // --source is required
    assertEquals(2, run("control", "--source", "etcd"));
    assertEquals(2, run("control", "--source", "dir:"));
    assertEquals(2, run("control", "--source", "dir:/tmp", "--listen", "nohost"));
    assertEquals(2, run("local", "up")); // -f is required
    assertEquals(2, run("local", "up", "-f", "/tmp", "--prefix", "Bad-Prefix"));
    assertEquals(2, run("local", "up", "-f", "/tmp", "--service-cidr", "ten"));
    assertEquals(2, run("frobnicate"));
  }

  /** What main runs for `nodemesh proxy ...`: the proxy's command alone, answering as before. */
  private int runProxyAlone(String... args) {
    CommandLine cl = Main.proxyCommandLine();
    cl.setOut(new PrintWriter(out, true));
    cl.setErr(new PrintWriter(err, true));
    return cl.execute(args);
  }

  @Test
  void theProxyCommandAloneHasTheSameUsageAndExitCodes() {
    assertEquals(0, runProxyAlone("--help"));
    String alone = out.toString();
    out.getBuffer().setLength(0);
    assertEquals(0, run("proxy", "--help"));
    assertEquals(out.toString(), alone);
    assertTrue(alone.startsWith("Usage: nodemesh proxy"), alone);
    assertEquals(2, runProxyAlone("--config-dir", "/tmp", "--transport=quic"));
    assertEquals(2, runProxyAlone("--config-dir", "/tmp", "--admin", "nohost"));
    assertEquals(2, runProxyAlone()); // --config-dir or --xds is required
    assertEquals(2, runProxyAlone("--config-dir", "/tmp", "--xds", "127.0.0.1:15010"));
    assertEquals(2, runProxyAlone("--config-dir", "/tmp", "--access-log-sample", "1.5"));
    assertTrue(err.toString().contains("Usage: nodemesh proxy"), err.toString());
    CommandLine.ParseResult r =
        Main.proxyCommandLine().parseArgs("--config-dir", "/tmp", "--transport=io_uring");
    ProxyCommand p = (ProxyCommand) r.commandSpec().userObject();
    assertEquals(dev.nodemesh.proxy.transport.TransportKind.IO_URING, p.transport);
  }

  @Test
  void transportNamesAreLowerCaseFriendly() {
    CommandLine cl = Main.commandLine();
    CommandLine.ParseResult r =
        cl.parseArgs("proxy", "--config-dir", "/tmp", "--transport=io_uring", "--workers", "2");
    ProxyCommand p = (ProxyCommand) r.subcommand().commandSpec().userObject();
    assertEquals(dev.nodemesh.proxy.transport.TransportKind.IO_URING, p.transport);
    assertEquals(2, p.workers);
    assertEquals(15020, p.admin.getPort());
    assertEquals("off", p.accessLog);
    assertEquals(1.0, p.accessLogSample);
    r =
        cl.parseArgs(
            "proxy", "--xds", "h:1", "--access-log=/var/log/a.json", "--access-log-sample=0.25");
    p = (ProxyCommand) r.subcommand().commandSpec().userObject();
    assertEquals("/var/log/a.json", p.accessLog);
    assertEquals(0.25, p.accessLogSample);
  }

  @Test
  void statusOfAnEmptyRunDirSaysNothingIsUp(
      @org.junit.jupiter.api.io.TempDir java.nio.file.Path d) {
    assertEquals(0, run("local", "status", "--run-dir", d.toString()));
    assertEquals(0, run("local", "down", "--run-dir", d.toString()));
  }
}
