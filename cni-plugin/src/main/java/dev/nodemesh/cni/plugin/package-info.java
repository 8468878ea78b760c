/**
 * What the nodemesh plugin does on each CNI command: enrol the pod with the node agent on ADD (and
 * record it under the run dir), remove it on DEL, verify it on CHECK, sweep stale records on GC.
 */
@NullMarked
package dev.nodemesh.cni.plugin;

import org.jspecify.annotations.NullMarked;
