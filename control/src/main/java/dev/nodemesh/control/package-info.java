/**
 * The control plane: resource store, per-node translation, xDS server and certificate authority.
 * Empty until the control-plane issue; the node proxy reads YAML files directly until then.
 */
@NullMarked
package dev.nodemesh.control;

import org.jspecify.annotations.NullMarked;
