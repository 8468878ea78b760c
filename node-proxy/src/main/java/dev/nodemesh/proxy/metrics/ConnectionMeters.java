package dev.nodemesh.proxy.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Timer;

/** The meters of one label set, resolved once per connection. */
public record ConnectionMeters(
    Counter opened,
    Counter closed,
    Counter failed,
    Counter sentBytes,
    Counter receivedBytes,
    Timer duration) {}
