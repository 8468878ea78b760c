/**
 * What the control plane writes back to the cluster about the objects it reads: the Gateway API
 * status of the HTTPRoutes and GRPCRoutes attached to Services.
 */
@NullMarked
package dev.nodemesh.control.status;

import org.jspecify.annotations.NullMarked;
