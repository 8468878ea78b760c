package dev.nodemesh.proxy.tunnel;

import java.time.Duration;

/**
 * Sizes and limits of HBONE connections.
 *
 * @param maxStreamsPerConnection streams the client multiplexes on one connection before it opens
 *     another to the same destination
 * @param serverMaxStreams SETTINGS_MAX_CONCURRENT_STREAMS the server advertises (at least the
 *     client's cap)
 * @param streamWindow initial HTTP/2 flow-control window of each stream, both directions
 * @param connectionWindow flow-control window of the whole connection
 * @param idleTimeout a client connection with no stream for this long is closed
 */
public record TunnelSettings(
    int maxStreamsPerConnection,
    int serverMaxStreams,
    int streamWindow,
    int connectionWindow,
    Duration idleTimeout) {

  /** 100 streams per connection, 4 MiB per stream, 16 MiB per connection, 60 s idle. */
  public static TunnelSettings defaults() {
    return new TunnelSettings(100, 1000, 4 << 20, 16 << 20, Duration.ofSeconds(60));
  }

  public TunnelSettings {
    if (maxStreamsPerConnection < 1 || serverMaxStreams < maxStreamsPerConnection) {
      throw new IllegalArgumentException("stream limits must be >= 1 and server >= client");
    }
    if (streamWindow < 65_535 || connectionWindow < 65_535) {
      throw new IllegalArgumentException("HTTP/2 windows are at least 65535 bytes");
    }
  }
}
