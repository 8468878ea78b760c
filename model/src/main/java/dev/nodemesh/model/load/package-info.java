/**
 * Loading a directory of Kubernetes-shaped YAML into a {@link dev.nodemesh.model.config
 * .ConfigSnapshot} ({@link dev.nodemesh.model.load.ConfigLoader}), dispatching every document
 * through the resource-kind registry ({@code model.kind}). Above the registry, so the registry and
 * the records below it never import the loader.
 */
@NullMarked
package dev.nodemesh.model.load;

import org.jspecify.annotations.NullMarked;
