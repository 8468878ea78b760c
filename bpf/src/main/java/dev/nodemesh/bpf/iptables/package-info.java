/** iptables interception inside pod network namespaces (rules text, install, remove). */
@NullMarked
package dev.nodemesh.bpf.iptables;

import org.jspecify.annotations.NullMarked;
