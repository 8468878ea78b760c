/**
 * Local mode: a node of network-namespace pods on one machine, built from Kubernetes-shaped YAML.
 */
@NullMarked
package dev.nodemesh.scripts.local;

import org.jspecify.annotations.NullMarked;
