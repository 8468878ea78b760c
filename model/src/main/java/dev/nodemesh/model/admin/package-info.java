/**
 * The admin HTTP endpoint both daemons serve: {@link dev.nodemesh.model.admin.AdminHttpServer} (the
 * Netty server with its threads, limits, loopback listener and loopback-only paths) and the {@code
 * /logging} handler with its log-level control. Here, not in the node proxy, so the control plane's
 * health server runs the same server without depending on the data plane; not a module of its own
 * because it is a few classes whose only dependencies beyond the JDK and slf4j are netty-codec-http
 * and (optionally) logback.
 */
@NullMarked
package dev.nodemesh.model.admin;

import org.jspecify.annotations.NullMarked;
