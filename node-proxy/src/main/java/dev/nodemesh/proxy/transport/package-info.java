/** Netty transport selection (epoll, io_uring, NIO) and per-transport channel factories. */
@NullMarked
package dev.nodemesh.proxy.transport;

import org.jspecify.annotations.NullMarked;
