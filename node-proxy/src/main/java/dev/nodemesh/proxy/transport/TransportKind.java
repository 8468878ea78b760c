package dev.nodemesh.proxy.transport;

/** The Netty transport chosen at start. Epoll is the default on Linux; NIO is the fallback. */
public enum TransportKind {
  EPOLL,
  IO_URING,
  NIO
}
