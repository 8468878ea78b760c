/**
 * The inbound routing decision: which local workload a connection arriving at a pod is for. Pure
 * functions over the snapshot, like the outbound side.
 */
@NullMarked
package dev.nodemesh.proxy.inbound;

import org.jspecify.annotations.NullMarked;
