/**
 * libc and libbpf through jnr-ffi: the only place nodemesh binds either; errors become exceptions.
 */
@NullMarked
package dev.nodemesh.bpf.ffi;

import org.jspecify.annotations.NullMarked;
