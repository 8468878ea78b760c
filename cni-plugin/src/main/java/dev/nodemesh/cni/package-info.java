/**
 * The nodemesh CNI plugin's entry point. The spec's wire format lives in {@code spec}, the plugin's
 * behaviour in {@code plugin}, a libcni-style runner in {@code runner}, install-cni in {@code
 * install}.
 */
@NullMarked
package dev.nodemesh.cni;

import org.jspecify.annotations.NullMarked;
