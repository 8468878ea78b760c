/**
 * The registry of config resource kinds ({@link dev.nodemesh.model.kind.ResourceKinds}): one kind
 * file per kind ({@code <Kind>Kind}: its YAML and wire descriptors, encode and decode) that the xDS
 * client, the loader, the control plane's store and its sources iterate over.
 */
@NullMarked
package dev.nodemesh.model.kind;

import org.jspecify.annotations.NullMarked;
