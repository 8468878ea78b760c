package dev.nodemesh.proxy.tunnel;

import java.time.Duration;
import java.util.Objects;

/**
 * Sizes, limits and timeouts of HBONE connections.
 *
 * @param maxStreamsPerConnection streams the client multiplexes on one connection before it opens
 *     another to the same destination
 * @param serverMaxStreams SETTINGS_MAX_CONCURRENT_STREAMS the server advertises (at least the
 *     client's cap)
 * @param streamWindow initial HTTP/2 flow-control window of each stream, both directions
 * @param connectionWindow flow-control window of the whole connection
 * @param idleTimeout a client connection with no stream for this long is closed; a server
 *     connection after twice this ({@link #serverIdleTimeout}), so the client goes first
 * @param handshakeTimeout a TLS handshake not finished in this is abandoned, both sides
 */
public record TunnelSettings(
    int maxStreamsPerConnection,
    int serverMaxStreams,
    int streamWindow,
    int connectionWindow,
    Duration idleTimeout,
    Duration handshakeTimeout) {

  /**
   * 100 streams per connection, and the server takes at most 100 at once (the h2c downstream's cap:
   * a client never opens more, so this only stops a peer that ignores its own pool), 4 MiB per
   * stream, 16 MiB per connection, 60 s idle, 10 s handshakes.
   */
  public static TunnelSettings defaults() {
    return new TunnelSettings(
        100, 100, 4 << 20, 16 << 20, Duration.ofSeconds(60), Duration.ofSeconds(10));
  }

  public TunnelSettings {
    if (maxStreamsPerConnection < 1 || serverMaxStreams < maxStreamsPerConnection) {
      throw new IllegalArgumentException("stream limits must be >= 1 and server >= client");
    }
    if (streamWindow < 65_535 || connectionWindow < 65_535) {
      throw new IllegalArgumentException("HTTP/2 windows are at least 65535 bytes");
    }
    Objects.requireNonNull(idleTimeout, "idleTimeout");
    Objects.requireNonNull(handshakeTimeout, "handshakeTimeout");
    if (idleTimeout.isNegative()
        || idleTimeout.isZero()
        || handshakeTimeout.isNegative()
        || handshakeTimeout.isZero()) {
      throw new IllegalArgumentException("tunnel timeouts must be positive");
    }
  }

  /** The settings with the default 10 s handshake timeout. */
  public TunnelSettings(
      int maxStreamsPerConnection,
      int serverMaxStreams,
      int streamWindow,
      int connectionWindow,
      Duration idleTimeout) {
    this(
        maxStreamsPerConnection,
        serverMaxStreams,
        streamWindow,
        connectionWindow,
        idleTimeout,
        Duration.ofSeconds(10));
  }

  /**
   * The same sizes with other timeouts ({@code --tunnel-idle-timeout}, {@code
   * --tunnel-handshake-timeout}).
   */
  public TunnelSettings withTimeouts(Duration idle, Duration handshake) {
    return new TunnelSettings(
        maxStreamsPerConnection, serverMaxStreams, streamWindow, connectionWindow, idle, handshake);
  }

  /** How long a server connection may have no stream open before it is closed (with GOAWAY). */
  public Duration serverIdleTimeout() {
    return idleTimeout.multipliedBy(2);
  }
}
