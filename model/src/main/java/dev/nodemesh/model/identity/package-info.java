/**
 * Workload identity values shared by data and control plane: SPIFFE IDs and PEM encoding. The
 * certificates themselves (issuing, holding, rotating) live in the node proxy and the CA.
 */
@NullMarked
package dev.nodemesh.model.identity;

import org.jspecify.annotations.NullMarked;
