/**
 * The registry of config resource kinds ({@link dev.nodemesh.model.kind.ResourceKinds}): one
 * descriptor per kind that the xDS client and the control plane's store iterate over.
 */
@NullMarked
package dev.nodemesh.model.kind;

import org.jspecify.annotations.NullMarked;
