package dev.nodemesh.proxy.l7;

import java.time.Duration;
import java.util.Objects;

/**
 * Limits of the L7 path. Defaults here; each can be changed with a JVM system property (through
 * {@code NODEMESH_JAVA_OPTS}), read once at start.
 *
 * @param maxInitialLineBytes request line (HTTP/1.1): longer gets 414 ({@code
 *     nodemesh.http.maxInitialLineBytes}, 8192)
 * @param maxHeaderBytes request headers (HTTP/1.1 header block; HTTP/2
 *     SETTINGS_MAX_HEADER_LIST_SIZE): more gets 431 ({@code nodemesh.http.maxHeaderBytes}, 16384)
 * @param maxReplayBytes request body kept for a retry; a larger body is streamed and not retried
 *     ({@code nodemesh.http.maxReplayBytes}, 65536)
 * @param upstreamIdleTimeout a pooled upstream connection (HTTP/1.1 connection, HTTP/2 connection
 *     with no stream open, or HBONE CONNECT stream used as one) unused this long is closed ({@code
 *     nodemesh.http.upstreamIdleTimeoutMillis}, 60000)
 */
public record HttpLimits(
    int maxInitialLineBytes, int maxHeaderBytes, int maxReplayBytes, Duration upstreamIdleTimeout) {
  public static final HttpLimits DEFAULT =
      new HttpLimits(
          Integer.getInteger("nodemesh.http.maxInitialLineBytes", 8192),
          Integer.getInteger("nodemesh.http.maxHeaderBytes", 16384),
          Integer.getInteger("nodemesh.http.maxReplayBytes", 65536),
          Duration.ofMillis(Long.getLong("nodemesh.http.upstreamIdleTimeoutMillis", 60_000)));

  public HttpLimits {
    Objects.requireNonNull(upstreamIdleTimeout, "upstreamIdleTimeout");
    if (upstreamIdleTimeout.isNegative() || upstreamIdleTimeout.isZero()) {
      throw new IllegalArgumentException(
          "nodemesh.http.upstreamIdleTimeoutMillis must be positive: " + upstreamIdleTimeout);
    }
  }

  /** Limits with the default idle timeout (tests). */
  public HttpLimits(int maxInitialLineBytes, int maxHeaderBytes, int maxReplayBytes) {
    this(maxInitialLineBytes, maxHeaderBytes, maxReplayBytes, DEFAULT.upstreamIdleTimeout());
  }
}
