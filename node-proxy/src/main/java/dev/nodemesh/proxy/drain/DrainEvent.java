package dev.nodemesh.proxy.drain;

/**
 * Fired as a user event through the pipeline of every accepted connection when the proxy drains: a
 * handler that can end its connection cleanly (an HTTP codec between requests) does so; an L4 relay
 * has no such point and runs on until its peers close it or the grace period ends.
 */
public enum DrainEvent {
  INSTANCE
}
