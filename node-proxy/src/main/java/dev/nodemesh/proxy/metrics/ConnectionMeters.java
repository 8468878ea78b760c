package dev.nodemesh.proxy.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The meters of one label set, resolved once per connection.
 *
 * @param connect time from {@code Relays.connectAndRelay} (called by the captured connection's
 *     first handler once it has routed) to the upstream connected: the proxy's own added latency at
 *     L4 (socket creation in the pod's netns, the upstream handshake). The accept and the few µs of
 *     original-destination lookup and routing before it are not included; failed connects are
 *     counted in {@code failed}, not timed.
 * @param open connections currently relayed with these labels (backs a gauge)
 */
public record ConnectionMeters(
    Counter opened,
    Counter closed,
    Counter failed,
    Counter sentBytes,
    Counter receivedBytes,
    Timer duration,
    Timer connect,
    AtomicLong open) {

  /** The upstream is connected, {@code nanos} after the downstream was accepted. */
  public void connected(long nanos) {
    opened.increment();
    open.incrementAndGet();
    connect.record(nanos, TimeUnit.NANOSECONDS);
  }

  /** A connection counted by {@link #connected} has ended, {@code nanos} after it was accepted. */
  public void ended(long nanos) {
    closed.increment();
    open.decrementAndGet();
    duration.record(nanos, TimeUnit.NANOSECONDS);
  }
}
