package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.outbound.ServiceRange;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code nodemesh proxy --service-cidr}: repeatable, comma lists, both families, errors. */
class ServiceCidrFlagsTest {
  @TempDir Path dir;

  @Test
  void noneByDefault() {
    assertEquals(List.of(), parse("proxy", "--config-dir", dir.toString()).serviceCidrs);
  }

  @Test
  void repeatedAndCommaListedValuesAllCount() {
    ProxyCommand p =
        parse(
            "proxy",
            "--config-dir",
            dir.toString(),
            "--service-cidr=10.96.0.0/12,fd00:10:96::/112",
            "--service-cidr",
            "172.20.0.0/16");
    assertEquals(
        "[10.96.0.0/12, fd00:10:96:0:0:0:0:0/112, 172.20.0.0/16]",
        ServiceRange.parse(p.serviceCidrs).toString());
  }

  @Test
  void aValueThatIsNotACidrIsAUsageErrorNamingIt() {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(err, true));
    assertEquals(
        2, cl.execute("proxy", "--config-dir", dir.toString(), "--service-cidr", "10.96.0.0"));
    assertTrue(
        err.toString()
            .contains("--service-cidr: not an IPv4 or IPv6 CIDR (address/prefix): '10.96.0.0'"),
        err.toString());
  }

  private static ProxyCommand parse(String... args) {
    CommandLine.ParseResult r = Main.commandLine().parseArgs(args);
    return (ProxyCommand) r.subcommand().commandSpec().userObject();
  }
}
