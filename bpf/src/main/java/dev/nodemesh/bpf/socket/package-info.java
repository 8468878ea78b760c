/** Socket options beyond Java and Netty: SO_ORIGINAL_DST, SO_MARK, cookies. */
@NullMarked
package dev.nodemesh.bpf.socket;

import org.jspecify.annotations.NullMarked;
