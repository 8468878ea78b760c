/**
 * Workload identity: SPIFFE IDs, the workload certificates (X.509 SVIDs) this node's proxy holds
 * for the pods it serves, and where they come from.
 */
@NullMarked
package dev.nodemesh.proxy.identity;

import org.jspecify.annotations.NullMarked;
