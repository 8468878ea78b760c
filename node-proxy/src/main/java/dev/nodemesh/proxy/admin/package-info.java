/**
 * The admin endpoint: metrics, health, readiness, config dump, log levels. Never on data-plane
 * loops.
 */
@NullMarked
package dev.nodemesh.proxy.admin;

import org.jspecify.annotations.NullMarked;
