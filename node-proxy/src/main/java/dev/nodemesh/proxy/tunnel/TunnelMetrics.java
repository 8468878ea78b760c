package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import java.util.concurrent.atomic.AtomicLong;

/**
 * HBONE meters, one set per side ({@code reporter="source"} for the client pool, {@code
 * "destination"} for the 15008 listeners): connections open now, streams opened, TLS handshakes
 * that failed (including a peer whose SPIFFE ID was missing, invalid or not the one expected, and a
 * protocol other than h2), and streams refused (bad request or denied by policy). No label comes
 * from an address, so cardinality is two series per meter.
 */
public final class TunnelMetrics {
  /** The meters of one side. */
  public record Side(
      AtomicLong connectionsOpen,
      Counter streamsOpened,
      Counter handshakeFailures,
      Counter streamsRefused) {}

  private final Side client;
  private final Side server;
  private final Counter handshakeTimeouts;
  private final Counter idleTimeouts;

  public TunnelMetrics(MeterRegistry registry) {
    this.client = side(registry, "source");
    this.server = side(registry, "destination");
    this.handshakeTimeouts = ConnectionTimeouts.counter(registry, ConnectionTimeouts.TLS_HANDSHAKE);
    this.idleTimeouts = ConnectionTimeouts.counter(registry, ConnectionTimeouts.TUNNEL_IDLE);
  }

  /** TLS handshakes (either side) abandoned at {@link TunnelSettings#handshakeTimeout}. */
  public Counter handshakeTimeouts() {
    return handshakeTimeouts;
  }

  /** Server connections closed with no stream open ({@link TunnelSettings#serverIdleTimeout}). */
  public Counter idleTimeouts() {
    return idleTimeouts;
  }

  public Side client() {
    return client;
  }

  public Side server() {
    return server;
  }

  private static Side side(MeterRegistry registry, String reporter) {
    AtomicLong open = new AtomicLong();
    Gauge.builder("nodemesh.tunnel.connections.open", open, AtomicLong::get)
        .description("HBONE (mTLS HTTP/2) connections open now")
        .tag("reporter", reporter)
        .register(registry);
    return new Side(
        open,
        Counter.builder("nodemesh.tunnel.streams.opened")
            .description("HBONE CONNECT streams opened")
            .tag("reporter", reporter)
            .register(registry),
        Counter.builder("nodemesh.tunnel.handshake.failures")
            .description(
                "HBONE TLS handshakes that failed or whose peer identity or protocol was refused")
            .tag("reporter", reporter)
            .register(registry),
        Counter.builder("nodemesh.tunnel.streams.refused")
            .description("HBONE CONNECT streams refused: malformed, wrong pod, or denied by policy")
            .tag("reporter", reporter)
            .register(registry));
  }
}
