/**
 * Where resources come from: a directory of Kubernetes-shaped YAML, or fabric8 informers on a
 * cluster; both produce the same protobuf resources.
 */
@NullMarked
package dev.nodemesh.control.source;

import org.jspecify.annotations.NullMarked;
