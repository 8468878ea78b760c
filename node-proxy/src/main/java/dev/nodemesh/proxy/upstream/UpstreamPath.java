package dev.nodemesh.proxy.upstream;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.agent.EnrolledPod;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;

/**
 * How the proxy reaches one upstream target: the result of {@link PathDecider#decide}, made once
 * per connection or request try and then only carried out. Sealed so every dialer and relay has to
 * handle every way, and a new one cannot be added without the compiler finding them.
 */
public sealed interface UpstreamPath {

  /** The address the upstream application listens on (a pod IP or a passthrough address). */
  InetSocketAddress target();

  /**
   * The network namespace the proxy's socket is made in: for HBONE the tunnel connection's socket.
   */
  NetworkNamespace from();

  /**
   * A socket made in the source pod's namespace (with the proxy mark), so the cluster routes it as
   * it would have routed the pod's own connection: passthrough, no HBONE on this node, or a mesh
   * workload the config places on this node that is not enrolled (yet).
   */
  record Direct(NetworkNamespace from, InetSocketAddress target) implements UpstreamPath {}

  /**
   * The target is a pod enrolled on this node: a socket made inside its namespace (one proxy hop),
   * bound to {@code caller} when there is one, so the app sees the caller's address (see {@link
   * DirectDialer}). This proxy is the destination's only enforcement point then: the caller checks
   * the destination's policy before dialing.
   *
   * @param caller the address the app should see the connection come from (the source pod's, or a
   *     plaintext client's), of the target's family; null: the socket's own (the pod's)
   */
  record SameNode(EnrolledPod destination, InetSocketAddress target, @Nullable InetAddress caller)
      implements UpstreamPath {
    @Override
    public NetworkNamespace from() {
      return destination.netns();
    }
  }

  /**
   * A CONNECT stream to {@code target} in an HBONE tunnel: mutual TLS to {@link #gateway()} (the
   * destination pod's 15008, where its node's proxy listens) from {@code source}'s namespace,
   * presenting {@code sourceIdentity}; the peer must prove {@code expectedIdentity}. The receiving
   * node checks its policy per stream.
   */
  record Hbone(
      EnrolledPod source,
      InetSocketAddress target,
      SpiffeId sourceIdentity,
      SpiffeId expectedIdentity)
      implements UpstreamPath {
    @Override
    public NetworkNamespace from() {
      return source.netns();
    }

    /** The peer proxy's HBONE listener: the destination pod's IP, port 15008. */
    public InetSocketAddress gateway() {
      return new InetSocketAddress(target.getAddress(), NodeProxyConfig.HBONE_PORT);
    }
  }

  /**
   * The target needs HBONE but the source pod is not in the config, so it has no identity to
   * present: refused, never sent in plaintext instead.
   */
  record NoIdentity(EnrolledPod source, InetSocketAddress target) implements UpstreamPath {
    @Override
    public NetworkNamespace from() {
      return source.netns();
    }
  }
}
