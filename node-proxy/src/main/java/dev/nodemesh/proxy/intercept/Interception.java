package dev.nodemesh.proxy.intercept;

import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;

/**
 * Sends an enrolled pod's outbound connects to its in-pod outbound listener, and tells the proxy
 * where an accepted connection meant to go. The node agent calls {@link #install} after the pod's
 * listeners exist and {@link #remove} on delete; handlers call {@link #originalDestination}.
 */
public interface Interception extends AutoCloseable {
  void install(EnrolledPod pod) throws IOException;

  /** Stops intercepting the namespace at {@code netns}; a no-op when it is not intercepted. */
  void remove(Path netns) throws IOException;

  /**
   * The destination the pod's app connected to, for a channel accepted on its outbound listener.
   */
  InetSocketAddress originalDestination(Channel accepted, EnrolledPod source) throws IOException;

  /**
   * Lets go of this proxy's handles. Interception itself stays in place (rules, pinned programs),
   * so while the proxy is down mesh traffic fails instead of bypassing it.
   */
  @Override
  void close();
}
