/** The L4 relay: bytes between a pod's connection and the proxy's upstream connection. */
@NullMarked
package dev.nodemesh.proxy.l4;

import org.jspecify.annotations.NullMarked;
