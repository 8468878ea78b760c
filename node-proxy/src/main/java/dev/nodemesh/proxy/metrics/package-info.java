/** Micrometer meters of the data plane, in the Prometheus registry served on the admin port. */
@NullMarked
package dev.nodemesh.proxy.metrics;

import org.jspecify.annotations.NullMarked;
