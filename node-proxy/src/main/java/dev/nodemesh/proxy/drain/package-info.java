/**
 * Graceful stop: the connections the proxy accepted in pods, told to finish ({@link DrainEvent}),
 * waited for up to a grace period and counted as drained or cut ({@link Downstreams}); the HTTP/1
 * and HTTP/2 handlers that turn the event into "close when idle" ({@link HttpDrain}).
 */
@NullMarked
package dev.nodemesh.proxy.drain;

import org.jspecify.annotations.NullMarked;
