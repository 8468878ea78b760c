/**
 * Loads nodemesh's eBPF interception programs through libbpf, attaches them to a cgroup v2, pins
 * their maps and links so a restarted proxy adopts them, and registers pod network namespaces.
 */
@NullMarked
package dev.nodemesh.bpf.loader;

import org.jspecify.annotations.NullMarked;
