/**
 * The control plane: a source (Kubernetes informers or a YAML directory) feeds the resource store,
 * changes are debounced and translated to per-node views, and the xDS delta server pushes each node
 * what changed in its view. The certificate authority comes with its own issue.
 */
@NullMarked
package dev.nodemesh.control;

import org.jspecify.annotations.NullMarked;
