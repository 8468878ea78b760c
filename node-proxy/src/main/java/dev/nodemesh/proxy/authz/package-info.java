/**
 * Authorization: whether a connection (or, at L7, a request) may reach a destination workload,
 * decided from the snapshot's policies by a pure function.
 */
@NullMarked
package dev.nodemesh.proxy.authz;

import org.jspecify.annotations.NullMarked;
