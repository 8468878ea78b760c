/**
 * The CNI plugin's per-pod record files in the run directory: written by the plugin, read back by
 * the node proxy on start. One format, one reader/writer, used by both.
 */
@NullMarked
package dev.nodemesh.model.cni;

import org.jspecify.annotations.NullMarked;
