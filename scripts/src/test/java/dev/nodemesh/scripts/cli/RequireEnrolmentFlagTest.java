package dev.nodemesh.scripts.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.source.Source;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * {@code nodemesh control --require-enrolment}: {@code auto} (the default) gates capture on the
 * proxies' enrolment reports with the Kubernetes source and not with a YAML directory; {@code
 * on}/{@code off} force it; anything else is a usage error before any source is built.
 */
class RequireEnrolmentFlagTest {
  @TempDir Path dir;

  @Test
  void autoIsOnForKubernetesAndOffForADirectory() {
    assertTrue(ControlCommand.requiresEnrolment("auto", true));
    assertFalse(ControlCommand.requiresEnrolment("auto", false));
    assertTrue(ControlCommand.requiresEnrolment("on", false));
    assertTrue(ControlCommand.requiresEnrolment("on", true));
    assertFalse(ControlCommand.requiresEnrolment("off", true));
    assertFalse(ControlCommand.requiresEnrolment("off", false));
    assertThrows(
        IllegalArgumentException.class, () -> ControlCommand.requiresEnrolment("yes", true));
  }

  @Test
  void aDirectorySourceGatesOnlyWhenAskedTo() {
    try (Source byDefault = source("control", "--source", "dir:" + dir)) {
      assertNull(byDefault.enrolments(), "auto is off for local YAML");
    }
    try (Source on = source("control", "--source", "dir:" + dir, "--require-enrolment", "on")) {
      assertNotNull(on.enrolments());
    }
  }

  @Test
  void anUnknownValueIsAUsageErrorForEitherSource() {
    for (String src : new String[] {"kubernetes", "dir:" + dir}) {
      CommandLine cl = Main.commandLine();
      StringWriter err = new StringWriter();
      cl.setOut(new PrintWriter(new StringWriter(), true));
      cl.setErr(new PrintWriter(err, true));
      assertEquals(2, cl.execute("control", "--source", src, "--require-enrolment", "maybe"));
      assertTrue(err.toString().contains("must be auto, on or off"), err.toString());
    }
  }

  private static Source source(String... args) {
    CommandLine.ParseResult r = Main.commandLine().parseArgs(args);
    return ((ControlCommand) r.subcommand().commandSpec().userObject()).makeSource();
  }
}
