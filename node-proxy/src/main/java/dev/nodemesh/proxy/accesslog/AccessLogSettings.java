package dev.nodemesh.proxy.accesslog;

import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Where the access log goes and how much of it: {@code --access-log=off|stdout|<file>} and {@code
 * --access-log-sample=0..1} (the fraction of connections logged, decided when each is accepted).
 *
 * @param file the file appended to, or null for stdout; ignored when {@code enabled} is false
 */
public record AccessLogSettings(boolean enabled, @Nullable Path file, double sample) {
  public static final AccessLogSettings OFF = new AccessLogSettings(false, null, 1.0);

  public AccessLogSettings {
    if (!(sample >= 0 && sample <= 1)) {
      throw new IllegalArgumentException("access log sample must be in 0..1, got " + sample);
    }
  }

  /** {@code off}, {@code stdout} or a file path, as the flag takes it. */
  public static AccessLogSettings parse(String target, double sample) {
    return switch (target) {
      case "off", "" -> new AccessLogSettings(false, null, sample);
      case "stdout", "-" -> new AccessLogSettings(true, null, sample);
      default -> new AccessLogSettings(true, Path.of(target), sample);
    };
  }

  @Override
  public String toString() {
    return !enabled ? "off" : (file == null ? "stdout" : file.toString()) + " sample " + sample;
  }
}
