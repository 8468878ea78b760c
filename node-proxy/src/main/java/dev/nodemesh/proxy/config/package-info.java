/**
 * The proxy's view of the mesh as one immutable {@link dev.nodemesh.proxy.config.ConfigSnapshot}:
 * workloads (Pods) and services, loaded from a directory of Kubernetes-shaped YAML, validated
 * whole, and swapped atomically. xDS will later produce the same snapshot type.
 */
@NullMarked
package dev.nodemesh.proxy.config;

import org.jspecify.annotations.NullMarked;
