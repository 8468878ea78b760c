package dev.nodemesh.scripts.logging;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.core.ConsoleAppender;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

class LauncherLoggingTest {
  @Test
  void propertyThenEnvironmentThenInfo() {
    PrintStream err = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
    assertEquals(Level.DEBUG, LauncherLogging.rootLevel("debug", "WARN", err));
    assertEquals(Level.WARN, LauncherLogging.rootLevel(null, " warn ", err));
    assertEquals(Level.INFO, LauncherLogging.rootLevel(null, null, err));
    assertEquals(Level.INFO, LauncherLogging.rootLevel("", null, err));
    assertEquals(Level.OFF, LauncherLogging.rootLevel("OFF", null, err));
  }

  @Test
  void aLevelThatIsNoneIsReportedAndInfoUsed() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    PrintStream err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
    assertEquals(Level.INFO, LauncherLogging.rootLevel(null, "verbose", err));
    String said = bytes.toString(StandardCharsets.UTF_8);
    assertTrue(said.contains("'verbose'") && said.contains("NODEMESH_LOG_LEVEL"), said);
  }

  @Test
  void configuresOneStderrAppenderWithTheLaunchersPatternAndStopsTheChain() {
    LoggerContext context = new LoggerContext();
    LauncherLogging configurator = new LauncherLogging();
    configurator.setContext(context);
    assertEquals(
        Configurator.ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY, configurator.configure(context));
    ch.qos.logback.classic.Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ConsoleAppender<?> stderr = assertInstanceOf(ConsoleAppender.class, root.getAppender("STDERR"));
    assertEquals("System.err", stderr.getTarget());
    assertTrue(stderr.isStarted());
    PatternLayoutEncoder encoder =
        assertInstanceOf(PatternLayoutEncoder.class, stderr.getEncoder());
    assertEquals(LauncherLogging.PATTERN, encoder.getPattern());
    assertEquals(Level.ERROR, context.getLogger("io.netty.bootstrap.ServerBootstrap").getLevel());
    context.stop();
  }

  @Test
  void isTheConfigurationLogbackFoundForThisProcess() {
    // Found through META-INF/services: the test JVM's own context carries its appender.
    LoggerContext context = (LoggerContext) LoggerFactory.getILoggerFactory();
    ch.qos.logback.classic.Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    ConsoleAppender<?> stderr = assertInstanceOf(ConsoleAppender.class, root.getAppender("STDERR"));
    assertEquals(
        LauncherLogging.PATTERN, ((PatternLayoutEncoder) stderr.getEncoder()).getPattern());
  }
}
