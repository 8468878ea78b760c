/**
 * The one normalisation of an HTTP request-target that routing, L7 authorization, the access log
 * and the upstream all see: {@link dev.nodemesh.proxy.l7.path.RequestTarget} (pure, table-tested)
 * with its settings {@link dev.nodemesh.proxy.l7.path.PathSettings} ({@code --path-merge-slashes},
 * {@code --path-escaped-slashes}). It runs once, where a request head enters the L7 path, so no two
 * consumers can disagree about which path a request names.
 */
@NullMarked
package dev.nodemesh.proxy.l7.path;

import org.jspecify.annotations.NullMarked;
