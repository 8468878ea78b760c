package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.bpf.socket.SocketOptions;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.transport.Transport;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Sends an enrolled pod's outbound connects to its in-pod outbound listener, and tells the proxy
 * where an accepted connection meant to go. The node agent calls {@link #install} after the pod's
 * listeners exist and {@link #remove} on delete; handlers call {@link #originalDestination}.
 */
public interface Interception extends AutoCloseable {
  void install(EnrolledPod pod) throws IOException;

  /**
   * {@link #install(EnrolledPod)} given the pod's inbound listening channel (0.0.0.0:15006 inside
   * the pod), for an interception that hands connections to that socket itself (eBPF mode).
   */
  default void install(EnrolledPod pod, Channel inboundListener) throws IOException {
    install(pod);
  }

  /**
   * {@link #install(EnrolledPod, Channel)} for a pod with an IPv6 address: {@code inboundListener6}
   * is the proxy's [::]:15006 listener in the pod, and an [::1]:15001 outbound listener exists, so
   * the interception may capture native IPv6 as well.
   */
  default void install(EnrolledPod pod, Channel inboundListener, Channel inboundListener6)
      throws IOException {
    install(pod, inboundListener);
  }

  /**
   * The install the node agent calls: {@link #install(EnrolledPod, Channel, Channel)} when {@code
   * inboundListener6} is given, else {@link #install(EnrolledPod, Channel)}, for a namespace
   * expected to be in state {@code prior} (a restarted proxy re-enrolling its recorded pods expects
   * its rules in place). An interception that keeps rules in the namespace writes its first
   * transaction for that state; any state still ends installed, a wrong guess only costs a read.
   */
  default void install(
      EnrolledPod pod, Channel inboundListener, @Nullable Channel inboundListener6, Prior prior)
      throws IOException {
    if (inboundListener6 == null) {
      install(pod, inboundListener);
    } else {
      install(pod, inboundListener, inboundListener6);
    }
  }

  /**
   * Stops intercepting the namespace at {@code netns}; a no-op when it is not intercepted. The path
   * may already be gone (netns deleted before the pod): whatever is kept outside the namespace for
   * it is still removed, without entering it.
   */
  void remove(Path netns) throws IOException;

  /**
   * The destination the pod's app connected to, for a channel accepted on its outbound listener.
   */
  InetSocketAddress originalDestination(Channel accepted, EnrolledPod source) throws IOException;

  /**
   * The destination a connection accepted on {@code pod}'s inbound listener was sent to: {@code
   * SO_ORIGINAL_DST} after a REDIRECT (iptables mode) unless the interception says otherwise.
   */
  default InetSocketAddress inboundDestination(Channel accepted, EnrolledPod pod)
      throws IOException {
    return originalDestination(accepted);
  }

  /**
   * {@code SO_ORIGINAL_DST} of an accepted channel, asking the channel's own family first (IPv6 for
   * a connection accepted on one of the proxy's IPv6 listeners).
   */
  static InetSocketAddress originalDestination(Channel accepted) throws IOException {
    return SocketOptions.originalDestination(
        Transport.fd(accepted),
        accepted.localAddress() instanceof InetSocketAddress local
            && local.getAddress() instanceof Inet6Address);
  }

  /**
   * Lets go of this proxy's handles. Interception itself stays in place (rules, pinned programs),
   * so while the proxy is down mesh traffic fails instead of bypassing it.
   */
  @Override
  void close();
}
