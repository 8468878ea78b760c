/**
 * Policy routing inside a pod's network namespace over rtnetlink (a rule and a local route),
 * without spawning {@code ip}: what delivering to an app from the caller's address needs.
 */
@NullMarked
package dev.nodemesh.bpf.route;

import org.jspecify.annotations.NullMarked;
