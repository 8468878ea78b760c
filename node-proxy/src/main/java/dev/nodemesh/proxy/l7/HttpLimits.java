package dev.nodemesh.proxy.l7;

import io.netty.handler.codec.http.HttpHeaders;
import io.netty.util.AsciiString;
import java.time.Duration;
import java.util.Iterator;
import java.util.Map;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * Limits of the L7 path. Defaults here; each can be changed with a JVM system property (through
 * {@code NODEMESH_JAVA_OPTS}), read once at start.
 *
 * @param maxInitialLineBytes request line (HTTP/1.1): longer gets 414 ({@code
 *     nodemesh.http.maxInitialLineBytes}, 8192)
 * @param maxHeaderBytes request headers, counted alike on both protocols as the bytes of the {@code
 *     name: value\r\n} lines (HTTP/1.1 as sent; HTTP/2 as decoded, pseudo-headers as the request
 *     line and Host): more gets 431 on HTTP/1.1 and a 431 on that stream over h2c ({@code
 *     nodemesh.http.maxHeaderBytes}, 16384)
 * @param maxHeaderCount request header fields, both protocols: more gets 431 ({@code
 *     nodemesh.http.maxHeaderCount}, 100, Envoy's default)
 * @param maxReplayBytes request body kept for a retry; a larger body is streamed and not retried
 *     ({@code nodemesh.http.maxReplayBytes}, 65536)
 * @param upstreamIdleTimeout a pooled upstream connection (HTTP/1.1 connection, HTTP/2 connection
 *     with no stream open, or HBONE CONNECT stream used as one) unused this long is closed ({@code
 *     nodemesh.http.upstreamIdleTimeoutMillis}, 60000)
 */
public record HttpLimits(
    int maxInitialLineBytes,
    int maxHeaderBytes,
    int maxHeaderCount,
    int maxReplayBytes,
    Duration upstreamIdleTimeout) {
  public static final HttpLimits DEFAULT =
      new HttpLimits(
          Integer.getInteger("nodemesh.http.maxInitialLineBytes", 8192),
          Integer.getInteger("nodemesh.http.maxHeaderBytes", 16384),
          Integer.getInteger("nodemesh.http.maxHeaderCount", 100),
          Integer.getInteger("nodemesh.http.maxReplayBytes", 65536),
          Duration.ofMillis(Long.getLong("nodemesh.http.upstreamIdleTimeoutMillis", 60_000)));

  public HttpLimits {
    if (maxHeaderCount < 1 || maxHeaderBytes < 1) {
      throw new IllegalArgumentException("header limits must be positive");
    }
    Objects.requireNonNull(upstreamIdleTimeout, "upstreamIdleTimeout");
    if (upstreamIdleTimeout.isNegative() || upstreamIdleTimeout.isZero()) {
      throw new IllegalArgumentException(
          "nodemesh.http.upstreamIdleTimeoutMillis must be positive: " + upstreamIdleTimeout);
    }
  }

  /** Limits with the default idle timeout (tests). */
  public HttpLimits(int maxInitialLineBytes, int maxHeaderBytes, int maxReplayBytes) {
    this(
        maxInitialLineBytes,
        maxHeaderBytes,
        DEFAULT.maxHeaderCount(),
        maxReplayBytes,
        DEFAULT.upstreamIdleTimeout());
  }

  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE of an h2c downstream: four times {@link #maxHeaderBytes}, as
   * HPACK counts 32 bytes more per field than a header line has, so a request within both limits
   * here always decodes. Between this and its 1.25 times Netty answers 431 on the stream itself;
   * past that (a block five times the limit) the connection gets GOAWAY, as the header block would
   * otherwise have to be held whole.
   */
  public long h2HeaderListSize() {
    return 4L * maxHeaderBytes;
  }

  /**
   * Why {@code headers} break these limits, or null when they do not: more than {@link
   * #maxHeaderCount} fields, or more than {@link #maxHeaderBytes} of {@code name: value\r\n}.
   *
   * @param h2 the head came from an h2c stream: the {@code x-http2-*} fields Netty's conversion
   *     adds are not the client's and are not counted
   */
  public @Nullable String exceeded(HttpHeaders headers, boolean h2) {
    int count = 0;
    long bytes = 0;
    for (Iterator<Map.Entry<CharSequence, CharSequence>> it = headers.iteratorCharSequence();
        it.hasNext(); ) {
      Map.Entry<CharSequence, CharSequence> e = it.next();
      CharSequence name = e.getKey();
      if (h2 && AsciiString.regionMatches(name, true, 0, "x-http2-", 0, 8)) {
        continue;
      }
      count++;
      bytes += name.length() + e.getValue().length() + 4;
    }
    if (count > maxHeaderCount) {
      return count + " header fields, more than " + maxHeaderCount;
    }
    return bytes > maxHeaderBytes ? bytes + " bytes of headers, more than " + maxHeaderBytes : null;
  }
}
