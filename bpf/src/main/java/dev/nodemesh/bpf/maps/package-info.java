/**
 * Java mirrors of the eBPF maps' keys and values (bpf/src/main/c/types.h) as byte layouts, and a
 * reader of the compiled object's BTF that tests check the mirrors against.
 */
@NullMarked
package dev.nodemesh.bpf.maps;

import org.jspecify.annotations.NullMarked;
