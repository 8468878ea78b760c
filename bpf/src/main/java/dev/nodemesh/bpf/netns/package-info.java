/** Entering network namespaces from Java threads (setns through jnr-ffi). */
@NullMarked
package dev.nodemesh.bpf.netns;

import org.jspecify.annotations.NullMarked;
