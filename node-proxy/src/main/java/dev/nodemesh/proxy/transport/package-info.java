/**
 * Netty transport selection (epoll, io_uring, NIO) and per-transport channel factories, and the
 * connection timeouts every listener applies ({@link ConnectionTimeouts}, {@link
 * StreamlessTimeout}).
 */
@NullMarked
package dev.nodemesh.proxy.transport;

import org.jspecify.annotations.NullMarked;
