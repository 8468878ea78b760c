/**
 * The node proxy's xDS client: subscribes to the control plane's delta ADS stream, validates every
 * resource, builds the next {@link dev.nodemesh.model.config.ConfigSnapshot} whole, and ACKs it or
 * NACKs it with the reasons. All client state lives on one serialized executor.
 */
@NullMarked
package dev.nodemesh.proxy.xds;

import org.jspecify.annotations.NullMarked;
