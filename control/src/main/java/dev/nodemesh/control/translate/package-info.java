/**
 * Translation of the store to the view each node proxy needs: a pure function, tested without
 * sockets.
 */
@NullMarked
package dev.nodemesh.control.translate;

import org.jspecify.annotations.NullMarked;
