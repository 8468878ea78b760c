/**
 * Which pods the mesh captures: one setting read by install-cni (and so the CNI plugin), the node
 * proxy's local config and the control plane, so that what the plugin enrols and what the config
 * says is captured can never disagree.
 */
@NullMarked
package dev.nodemesh.model.capture;

import org.jspecify.annotations.NullMarked;
