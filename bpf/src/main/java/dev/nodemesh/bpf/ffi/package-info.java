/** libc through jnr-ffi: the only place nodemesh binds libc; errno becomes an exception. */
@NullMarked
package dev.nodemesh.bpf.ffi;

import org.jspecify.annotations.NullMarked;
