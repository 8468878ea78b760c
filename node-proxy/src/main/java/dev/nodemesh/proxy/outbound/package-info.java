/**
 * The outbound routing decision: given the current snapshot and the destination a pod dialled,
 * where the connection goes. Pure functions over the snapshot, no sockets, so every case is tested
 * without a network; the listener does the I/O.
 */
@NullMarked
package dev.nodemesh.proxy.outbound;

import org.jspecify.annotations.NullMarked;
