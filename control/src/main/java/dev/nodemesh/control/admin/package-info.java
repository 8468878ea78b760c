/** The control plane's health, readiness and metrics HTTP endpoint, on its own thread. */
@NullMarked
package dev.nodemesh.control.admin;

import org.jspecify.annotations.NullMarked;
