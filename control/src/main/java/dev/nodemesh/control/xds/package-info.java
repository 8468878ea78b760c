/**
 * The xDS delta ADS server: one state machine per node stream, ACK/NACK, removals, reconnect by
 * known versions, per-stream backpressure, metrics.
 */
@NullMarked
package dev.nodemesh.control.xds;

import org.jspecify.annotations.NullMarked;
