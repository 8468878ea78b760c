/** Client side of the node agent's gRPC service on its Unix socket. */
@NullMarked
package dev.nodemesh.scripts.agent;

import org.jspecify.annotations.NullMarked;
