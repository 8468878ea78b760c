/**
 * The pieces of an admin HTTP endpoint (JDK {@code HttpServer}) that both daemons serve: the {@code
 * /logging} handler with its log-level control, and binding the admin listeners. Here, not in the
 * node proxy, so the control plane's health server can use them without depending on the data
 * plane; not a module of its own because it is three small classes with no dependencies beyond the
 * JDK, slf4j and (optionally) logback.
 */
@NullMarked
package dev.nodemesh.model.admin;

import org.jspecify.annotations.NullMarked;
