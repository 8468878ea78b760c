/**
 * Runs a conflist's plugins the way libcni does (a container runtime's side of CNI), for local mode
 * and tests: no Go toolchain or {@code cnitool} needed.
 */
@NullMarked
package dev.nodemesh.cni.runner;

import org.jspecify.annotations.NullMarked;
