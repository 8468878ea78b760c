/**
 * The mesh config as immutable records (workloads, services, routes, policies, grants) and one
 * {@link dev.nodemesh.model.config.ConfigSnapshot} of them; the YAML parser and loader that build
 * them from Kubernetes-shaped objects, validated whole with field-path errors. Shared by the node
 * proxy, the control plane and tests; no I/O beyond reading YAML files.
 */
@NullMarked
package dev.nodemesh.model.config;

import org.jspecify.annotations.NullMarked;
