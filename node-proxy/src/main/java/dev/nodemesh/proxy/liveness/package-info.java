/**
 * The proxy never runs half-alive: an {@code Error} on a data-plane thread, or an event loop that
 * stops turning, ends the process with a non-zero status (so the DaemonSet restarts it), and {@code
 * /healthz} fails while a loop lags ({@link dev.nodemesh.proxy.liveness.LoopWatchdog}).
 */
@NullMarked
package dev.nodemesh.proxy.liveness;

import org.jspecify.annotations.NullMarked;
