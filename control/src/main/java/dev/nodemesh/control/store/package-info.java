/**
 * The typed, versioned resources the sources produce, in one store confined to the control-plane
 * executor.
 */
@NullMarked
package dev.nodemesh.control.store;

import org.jspecify.annotations.NullMarked;
