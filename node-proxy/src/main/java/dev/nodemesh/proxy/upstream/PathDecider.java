package dev.nodemesh.proxy.upstream;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.agent.EnrolledPod;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;

/**
 * Decides how the proxy reaches a target, from this node's facts, the snapshot, the enrolled pods,
 * the source pod and the destination alone: no I/O, so the L4 path, the L7 path and mirroring ask
 * the same question and get the same answer (ztunnel's {@code build_request} returns protocol,
 * gateway and expected identity together in the same way).
 *
 * <p>Order: a pod enrolled here is reached from inside its namespace, whatever the config says
 * about its node; with HBONE on, a mesh workload the config places on another node (or on none) is
 * reached through a tunnel, with the identities of both ends from the config, unless the config
 * marks it uncaptured (no proxy serves it); everything else is reached from the source's namespace,
 * as the pod itself would have.
 *
 * @param hboneNode this node's name when HBONE is on (the proxy holds certificates); null when it
 *     is off, and then every destination is reached directly
 * @param trustDomain of the SPIFFE IDs both ends of a tunnel prove
 */
public record PathDecider(@Nullable String hboneNode, String trustDomain) {

  /** The pods enrolled on this node, by IP (the agent's registry at run time). */
  @FunctionalInterface
  public interface EnrolledPods {
    @Nullable EnrolledPod byIp(InetAddress ip);
  }

  /**
   * How to reach {@code target}.
   *
   * @param source the pod whose connection this is (known from its listener)
   * @param endpoint the mesh workload {@code target} belongs to, or null for passthrough
   */
  public UpstreamPath decide(
      ConfigSnapshot snapshot,
      EnrolledPods enrolled,
      EnrolledPod source,
      @Nullable Workload endpoint,
      InetSocketAddress target) {
    EnrolledPod local = enrolled.byIp(target.getAddress());
    if (local != null) {
      return new UpstreamPath.SameNode(local, target, sameFamily(source, target.getAddress()));
    }
    String node = hboneNode;
    // Outside the mesh (the capture scope excludes it, or it runs where no proxy enrolled it):
    // nothing serves HBONE for it, so reach it as the source pod itself would.
    if (node == null
        || endpoint == null
        || !endpoint.captured()
        || endpoint.nodeName().equals(node)) {
      return new UpstreamPath.Direct(source.netns(), target);
    }
    Workload self = configuredWorkload(snapshot, source);
    if (self == null) {
      return new UpstreamPath.NoIdentity(source, target);
    }
    return new UpstreamPath.Hbone(
        source, target, SpiffeId.of(trustDomain, self), SpiffeId.of(trustDomain, endpoint));
  }

  /**
   * The pod's first address of {@code target}'s family (the one its own connection would have come
   * from), or null when it has none: the app then sees the proxy's socket's address.
   */
  static @Nullable InetAddress sameFamily(EnrolledPod pod, InetAddress target) {
    for (InetAddress ip : pod.ips()) {
      if ((ip instanceof Inet4Address) == (target instanceof Inet4Address)
          && !ip.isLinkLocalAddress()) {
        return ip;
      }
    }
    return null;
  }

  /**
   * The config's workload for a pod enrolled here (the identity the proxy presents for it), or null
   * when the config does not know it: by one of its IPs and its UID, else by IP, name and namespace
   * (a pod recreated under the same name before the config caught up).
   */
  public static @Nullable Workload configuredWorkload(ConfigSnapshot snapshot, EnrolledPod pod) {
    for (InetAddress ip : pod.ips()) {
      Workload w = snapshot.workloadByIp(ip);
      if (w != null && w.uid().equals(pod.uid())) {
        return w;
      }
    }
    for (InetAddress ip : pod.ips()) {
      Workload w = snapshot.workloadByIp(ip);
      if (w != null && w.namespace().equals(pod.namespace()) && w.name().equals(pod.name())) {
        return w;
      }
    }
    return null;
  }
}
