package dev.nodemesh.proxy.transport;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import java.time.Duration;
import java.util.Objects;

/**
 * How long the proxy keeps a connection that does nothing: each fires only on a connection that is
 * idle in its own sense (no request head yet, no request in flight, no byte either way, no stream
 * open, no finished handshake) and never on one that is working. Set by the {@code nodemesh proxy}
 * flags named below; every firing is counted in {@code nodemesh_connection_timeouts_total{reason}}.
 *
 * @param requestHeader {@code --http-request-header-timeout} (10 s): an L7 downstream connection
 *     must send a complete request head within this of its first byte (HTTP/1.1: of the first byte
 *     of each request; h2c: of the connection's start, until its first stream opens), else it is
 *     closed (slowloris). A connection on an HTTP port that has sent nothing at all is closed after
 *     it too.
 * @param httpIdle {@code --http-idle-timeout} (10 min): an L7 downstream connection with no request
 *     in flight (HTTP/1.1) or no stream open (h2c) this long is closed. Longer than the idle
 *     timeouts of common client pools (Go 90 s, OkHttp 5 min), so the client, which knows whether
 *     it will reuse a connection, normally closes first.
 * @param tcpIdle {@code --tcp-idle-timeout} (1 h, Envoy's TCP proxy default; 0 turns it off): an L4
 *     relay with no byte in either direction this long is closed on both sides.
 * @param tunnelIdle {@code --tunnel-idle-timeout} (60 s): a client HBONE connection with no stream
 *     this long is closed; the server closes one after twice this, so the client, which knows
 *     whether it will reuse it, goes first, and the server's only catches clients that never do.
 * @param tlsHandshake {@code --tunnel-handshake-timeout} (10 s): an HBONE TLS handshake, either
 *     side, not finished in this is abandoned and the connection closed.
 * @param httpHalfClose {@code --http-half-close-timeout} (5 s; 0: at the FIN): an HTTP/1.1 client
 *     that has shut its side (FIN) while a request it sent before still waits for the start of its
 *     response (no endpoint ready, a fault delay, a retry backoff, a slow upstream) is taken as
 *     gone this long after the FIN (or after that request's turn came, for a pipelined one): its
 *     connection is closed and the upstream request cancelled. A FIN cannot be told from a client
 *     that closed its socket until something is written to it; see {@code l7.RequestHandler}.
 */
public record ConnectionTimeouts(
    Duration requestHeader,
    Duration httpIdle,
    Duration tcpIdle,
    Duration tunnelIdle,
    Duration tlsHandshake,
    Duration httpHalfClose) {

  /** The meter every timeout counts in, with {@code reason} one of the constants below. */
  public static final String METER = "nodemesh.connection.timeouts";

  public static final String REQUEST_HEADER = "request_header";
  public static final String HTTP_IDLE = "http_idle";
  public static final String TCP_IDLE = "tcp_idle";
  public static final String TUNNEL_IDLE = "tunnel_idle";
  public static final String TLS_HANDSHAKE = "tls_handshake";
  public static final String HTTP_HALF_CLOSE = "http_half_close";

  public static final ConnectionTimeouts DEFAULT =
      new ConnectionTimeouts(
          Duration.ofSeconds(10),
          Duration.ofMinutes(10),
          Duration.ofHours(1),
          Duration.ofSeconds(60),
          Duration.ofSeconds(10),
          Duration.ofSeconds(5));

  public ConnectionTimeouts {
    positive("--http-request-header-timeout", requestHeader);
    positive("--http-idle-timeout", httpIdle);
    Objects.requireNonNull(tcpIdle, "tcpIdle");
    if (tcpIdle.isNegative()) {
      throw new IllegalArgumentException("--tcp-idle-timeout must not be negative: " + tcpIdle);
    }
    positive("--tunnel-idle-timeout", tunnelIdle);
    positive("--tunnel-handshake-timeout", tlsHandshake);
    Objects.requireNonNull(httpHalfClose, "httpHalfClose");
    if (httpHalfClose.isNegative()) {
      throw new IllegalArgumentException(
          "--http-half-close-timeout must not be negative: " + httpHalfClose);
    }
  }

  private static void positive(String flag, Duration d) {
    Objects.requireNonNull(d, flag);
    if (d.isNegative() || d.isZero()) {
      throw new IllegalArgumentException(flag + " must be positive: " + d);
    }
  }

  /** The L4 idle timeout is on. */
  public boolean tcpIdleEnabled() {
    return !tcpIdle.isZero();
  }

  /** The counter of timeouts for {@code reason} (registered once, shared by every caller). */
  public static Counter counter(MeterRegistry registry, String reason) {
    return Counter.builder(METER)
        .description("connections closed by an idle, request-header or handshake timeout")
        .tag("reason", reason)
        .register(registry);
  }
}
