package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code nodemesh proxy --path-merge-slashes / --path-escaped-slashes}: defaults and errors. */
class PathFlagsTest {
  @TempDir Path dir;

  @Test
  void defaultsMergeSlashesAndRejectEscapedSlashes() {
    ProxyCommand p = parse("proxy", "--config-dir", dir.toString());
    assertTrue(p.pathMergeSlashes);
    assertEquals("reject", p.pathEscapedSlashes);
  }

  @Test
  void bothCanBeChanged() {
    ProxyCommand p =
        parse(
            "proxy",
            "--config-dir",
            dir.toString(),
            "--path-merge-slashes=false",
            "--path-escaped-slashes",
            "keep");
    assertEquals(false, p.pathMergeSlashes);
    assertEquals("keep", p.pathEscapedSlashes);
  }

  @Test
  void anUnknownEscapedSlashActionIsAUsageErrorNamingTheChoices() {
    CommandLine cl = Main.commandLine();
    StringWriter err = new StringWriter();
    cl.setOut(new PrintWriter(new StringWriter(), true));
    cl.setErr(new PrintWriter(err, true));
    assertEquals(
        2, cl.execute("proxy", "--config-dir", dir.toString(), "--path-escaped-slashes", "decode"));
    assertTrue(err.toString().contains("reject, keep or unescape"), err.toString());
  }

  private static ProxyCommand parse(String... args) {
    CommandLine.ParseResult r = Main.commandLine().parseArgs(args);
    return (ProxyCommand) r.subcommand().commandSpec().userObject();
  }
}
