/** The node proxy: one per node, carrying every meshed pod's traffic. */
@NullMarked
package dev.nodemesh.proxy;

import org.jspecify.annotations.NullMarked;
