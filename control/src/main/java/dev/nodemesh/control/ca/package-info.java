/**
 * The control plane's certificate authority: its signing key and certificate (a root it made and
 * persisted, or an operator's intermediate), the gRPC service node proxies ask for workload
 * certificates, how that service tells which node is calling, and the control plane's own TLS
 * serving certificate.
 */
@NullMarked
package dev.nodemesh.control.ca;

import org.jspecify.annotations.NullMarked;
