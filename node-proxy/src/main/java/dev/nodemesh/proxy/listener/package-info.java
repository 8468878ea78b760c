/** The listener path of the node proxy. */
@NullMarked
package dev.nodemesh.proxy.listener;

import org.jspecify.annotations.NullMarked;
