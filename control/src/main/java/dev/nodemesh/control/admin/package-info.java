/**
 * The control plane's health, readiness, metrics and log-level HTTP endpoint, on its own thread.
 */
@NullMarked
package dev.nodemesh.control.admin;

import org.jspecify.annotations.NullMarked;
