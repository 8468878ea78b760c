package dev.nodemesh.proxy.agent;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.identity.PodRef;
import java.net.InetAddress;
import java.util.List;

/**
 * A pod this node proxy carries traffic for: who it is, its network namespace (held open, so the
 * proxy can create sockets inside it), and its IPs.
 */
public record EnrolledPod(
    String uid,
    String name,
    String namespace,
    String netnsPath,
    List<InetAddress> ips,
    NetworkNamespace netns)
    implements PodRef {

  public EnrolledPod {
    ips = List.copyOf(ips);
  }

  /** True when an AddPod for {@code other} would change nothing. */
  /**
   * Whether the pod has an IPv6 address (other than link-local): the proxy then listens on IPv6 in
   * the pod as well and captures its native IPv6 traffic.
   */
  public boolean hasIpv6() {
    return ips.stream()
        .anyMatch(a -> a instanceof java.net.Inet6Address && !a.isLinkLocalAddress());
  }

  public boolean sameAs(EnrolledPod other) {
    return uid.equals(other.uid)
        && name.equals(other.name)
        && namespace.equals(other.namespace)
        && netnsPath.equals(other.netnsPath)
        && ips.equals(other.ips)
        && netns.inode() == other.netns.inode();
  }

  @Override
  public String toString() {
    return namespace + "/" + name + " (" + uid + ", " + netnsPath + ", " + ips + ")";
  }
}
