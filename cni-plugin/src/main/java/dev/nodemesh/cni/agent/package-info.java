/**
 * The client side of the node agent's Unix-socket gRPC service: used by the CNI plugin and by local
 * mode; here so neither needs the node proxy module.
 */
@NullMarked
package dev.nodemesh.cni.agent;

import org.jspecify.annotations.NullMarked;
