/**
 * Conntrack entries of a pod's network namespace, over ctnetlink: the stale entries a connection
 * made before capture leaves behind, which would let later connections skip the REDIRECT.
 */
@NullMarked
package dev.nodemesh.bpf.conntrack;

import org.jspecify.annotations.NullMarked;
