/**
 * The proxy's state on the node across restarts: the last config snapshot it accepted over xDS
 * ({@code SnapshotStore}, {@code SavedConfig}), saved after every accepted update and loaded at
 * start before any pod is enrolled, so a restarted proxy enforces its last known routes and
 * policies even while the control plane is away.
 */
@NullMarked
package dev.nodemesh.proxy.state;

import org.jspecify.annotations.NullMarked;
