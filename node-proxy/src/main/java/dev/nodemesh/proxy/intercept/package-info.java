/**
 * How pod traffic reaches the in-pod listeners: iptables rules or eBPF programs, behind one {@link
 * dev.nodemesh.proxy.intercept.Interception} interface chosen at start.
 */
@NullMarked
package dev.nodemesh.proxy.intercept;

import org.jspecify.annotations.NullMarked;
