package dev.nodemesh.proxy;

/** A running node proxy. Being written; the API below is what the launcher uses. */
public final class NodeProxy implements AutoCloseable {
  private NodeProxy() {}

  /** Starts every part of the proxy and returns once the agent socket and admin port accept. */
  public static NodeProxy start(NodeProxyConfig config) throws Exception {
    throw new UnsupportedOperationException("being written");
  }

  /** Blocks until {@link #close()} is called (e.g. from a shutdown hook). */
  public void awaitClose() throws InterruptedException {}

  @Override
  public void close() {}
}
