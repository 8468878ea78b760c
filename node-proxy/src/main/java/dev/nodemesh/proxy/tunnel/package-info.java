/**
 * HBONE: HTTP/2 CONNECT over mutual TLS between node proxies. The server side listens on 15008
 * inside each enrolled pod's namespace and presents that pod's workload certificate; the client
 * side keeps pooled, multiplexed connections from a source pod's namespace to a destination pod,
 * presenting the source workload's certificate.
 */
@NullMarked
package dev.nodemesh.proxy.tunnel;

import org.jspecify.annotations.NullMarked;
