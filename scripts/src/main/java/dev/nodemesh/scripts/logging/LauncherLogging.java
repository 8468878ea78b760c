package dev.nodemesh.scripts.logging;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.encoder.PatternLayoutEncoder;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.spi.ContextAwareBase;
import java.util.Locale;
import org.jspecify.annotations.Nullable;

/**
 * The launcher's logging, configured in code: one line per event on stderr ({@link #PATTERN}, as
 * slf4j-simple printed it plus the time), root level from {@code -Dnodemesh.log.level} or else the
 * environment's {@code NODEMESH_LOG_LEVEL} (default INFO); the proxy's admin {@code /logging}
 * changes levels at run time.
 *
 * <p>Why code rather than a {@code logback.xml}: logback parses XML through Joran and the JDK's SAX
 * parser, about 350 classes (some 2 MB of metaspace and symbols) that every process launched from
 * here, the node proxy above all, would keep loaded for nothing (issue 19, footprint). logback
 * finds this class through {@code META-INF/services} before it looks for any XML file, and nothing
 * after it runs. A {@code -Dlogback.configurationFile} is still honoured: then this steps aside.
 */
public final class LauncherLogging extends ContextAwareBase implements Configurator {
  /** Time, thread, level, logger and message: the line every nodemesh process prints. */
  public static final String PATTERN = "%d{HH:mm:ss.SSS} [%thread] %-5level %logger - %msg%n";

  /** The property, then the environment variable, that set the root level. */
  static final String LEVEL_PROPERTY = "nodemesh.log.level";

  static final String LEVEL_ENV = "NODEMESH_LOG_LEVEL";

  public LauncherLogging() {}

  @Override
  public ExecutionStatus configure(LoggerContext context) {
    if (System.getProperty("logback.configurationFile") != null) {
      return ExecutionStatus.INVOKE_NEXT_IF_ANY; // an operator's own file wins
    }
    PatternLayoutEncoder encoder = new PatternLayoutEncoder();
    encoder.setContext(context);
    encoder.setPattern(PATTERN);
    encoder.start();
    ConsoleAppender<ILoggingEvent> stderr = new ConsoleAppender<>();
    stderr.setContext(context);
    stderr.setName("STDERR");
    stderr.setTarget("System.err");
    stderr.setEncoder(encoder);
    stderr.start();
    Logger root = context.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    root.setLevel(
        rootLevel(System.getProperty(LEVEL_PROPERTY), System.getenv(LEVEL_ENV), System.err));
    root.addAppender(stderr);
    // gRPC's Netty server sets SO_KEEPALIVE on every accepted connection, and the agent's Unix
    // socket has none: a warning per CNI call that is not news. (The CNI plugin's shaded copy
    // logs the same under its relocated name.)
    context.getLogger("io.netty.bootstrap.ServerBootstrap").setLevel(Level.ERROR);
    context.getLogger("io.grpc.netty.shaded.io.netty.bootstrap").setLevel(Level.ERROR);
    return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
  }

  /**
   * The root level: the property if set, else the environment variable, else INFO. A value that
   * names no level is reported on {@code err} and INFO is used: a typo must not silence the log.
   */
  static Level rootLevel(@Nullable String property, @Nullable String env, java.io.PrintStream err) {
    String asked = property != null ? property : env;
    if (asked == null || asked.isBlank()) {
      return Level.INFO;
    }
    Level level = Level.toLevel(asked.trim().toUpperCase(Locale.ROOT), null);
    if (level == null) {
      err.println(
          "nodemesh: log level '"
              + asked
              + "' (from "
              + (property != null ? "-D" + LEVEL_PROPERTY : LEVEL_ENV)
              + ") is none of TRACE, DEBUG, INFO, WARN, ERROR, OFF; logging at INFO");
      return Level.INFO;
    }
    return level;
  }
}
