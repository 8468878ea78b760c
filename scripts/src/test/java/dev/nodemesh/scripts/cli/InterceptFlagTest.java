package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code nodemesh proxy --intercept}: the three modes parse, anything else is a usage error. */
class InterceptFlagTest {
  @TempDir Path dir;

  @Test
  void anUnknownModeIsAUsageErrorNamingTheChoices() {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(err, true));
    assertEquals(2, cl.execute("proxy", "--config-dir", dir.toString(), "--intercept", "maybe"));
    assertTrue(err.toString().contains("iptables, ebpf or auto"), err.toString());
  }

  @Test
  void autoTakesTheBpfPaths() {
    CommandLine.ParseResult r =
        Main.commandLine()
            .parseArgs(
                "proxy",
                "--config-dir",
                dir.toString(),
                "--intercept",
                "auto",
                "--bpf-cgroup",
                "/sys/fs/cgroup/kubepods.slice",
                "--bpf-pin-dir",
                "/sys/fs/bpf/nm");
    ProxyCommand p = (ProxyCommand) r.subcommand().commandSpec().userObject();
    assertEquals("auto", p.intercept);
    assertEquals(Path.of("/sys/fs/cgroup/kubepods.slice"), p.bpfCgroup);
    assertEquals(Path.of("/sys/fs/bpf/nm"), p.bpfPinDir);
  }
}
