package dev.nodemesh.model.admin;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;
import org.slf4j.LoggerFactory;

/**
 * Log levels at run time, for admin {@code /logging}: works when Logback is the slf4j backend (the
 * launcher's); with any other backend {@link #context()} is null and the endpoint says so. Logback
 * is an optional dependency of this module: this class is loaded only by the admin endpoint.
 */
public final class LogLevels {
  private LogLevels() {}

  /** The Logback context in use, or null when slf4j is bound to another backend. */
  private static @Nullable LoggerContext context() {
    try {
      return LoggerFactory.getILoggerFactory() instanceof LoggerContext c ? c : null;
    } catch (NoClassDefFoundError e) {
      return null; // Logback is not on the class path at all
    }
  }

  /** Whether levels can change: Logback is the slf4j backend. */
  static boolean available() {
    return context() != null;
  }

  /** Every logger with a level of its own (and ROOT), name → level; empty without Logback. */
  static Map<String, String> explicit() {
    LoggerContext context = context();
    if (context == null) {
      return Map.of();
    }
    Map<String, String> out = new TreeMap<>();
    for (Logger l : context.getLoggerList()) {
      Level level = l.getLevel();
      if (level != null) {
        out.put(l.getName(), level.toString());
      }
    }
    return out;
  }

  /**
   * Sets {@code logger}'s level ({@code trace|debug|info|warn|error|off}, any case), or clears it
   * so the logger inherits again ({@code inherit}; not for ROOT).
   *
   * @return the logger's effective level afterwards
   * @throws IllegalArgumentException for an unknown level or a malformed logger name
   */
  static String set(String logger, String level) {
    LoggerContext context = context();
    if (context == null) {
      throw new IllegalStateException("the slf4j backend is not Logback");
    }
    if (logger.isEmpty() || !logger.matches("[A-Za-z0-9_.$-]+")) {
      throw new IllegalArgumentException("bad logger name '" + logger + "'");
    }
    Logger l = context.getLogger(logger);
    String lower = level.toLowerCase(Locale.ROOT);
    if (lower.equals("inherit") || lower.equals("null")) {
      if (l.getName().equals(org.slf4j.Logger.ROOT_LOGGER_NAME)) {
        throw new IllegalArgumentException("ROOT cannot inherit a level");
      }
      l.setLevel(null);
      return l.getEffectiveLevel().toString();
    }
    Level parsed =
        switch (lower) {
          case "trace" -> Level.TRACE;
          case "debug" -> Level.DEBUG;
          case "info" -> Level.INFO;
          case "warn", "warning" -> Level.WARN;
          case "error" -> Level.ERROR;
          case "off" -> Level.OFF;
          default ->
              throw new IllegalArgumentException(
                  "unknown level '" + level + "': trace, debug, info, warn, error, off or inherit");
        };
    l.setLevel(parsed);
    return l.getEffectiveLevel().toString();
  }
}
