package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.Cidr;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;

/**
 * The cluster's service address range ({@code --service-cidr}, IPv4 and/or IPv6): where service
 * VIPs are allocated. Known at start, before any config arrives, so that the proxy can tell a VIP
 * it has not heard of yet from an address outside the mesh: before the first config a connection to
 * the range is refused ({@link Route.NoConfig}) instead of passed through to an address that
 * nothing on the pod's path would translate, and enrolment clears a pod's conntrack entries toward
 * it (connections made before capture leave un-NATed entries that would let later connections on
 * the same ports skip the REDIRECT).
 *
 * <p>Limits: only what the operator gives; empty (the default) keeps the old behaviour of passing
 * every unknown address through. After the first config the range plays no part in routing.
 *
 * @param cidrs the blocks, any mix of families
 */
public record ServiceRange(List<Cidr> cidrs) {
  /** No range known: nothing is refused for being in it, no conntrack entry is cleared. */
  public static final ServiceRange NONE = new ServiceRange(List.of());

  public ServiceRange {
    cidrs = List.copyOf(cidrs);
  }

  /**
   * Parses {@code --service-cidr} values: each one CIDR or a comma-separated list of them.
   *
   * @throws IllegalArgumentException naming the first value that is not a CIDR
   */
  public static ServiceRange parse(List<String> values) {
    List<Cidr> out = new ArrayList<>();
    for (String value : values) {
      for (String part : value.split(",", -1)) {
        String text = part.strip();
        Cidr cidr = text.isEmpty() ? null : Cidr.parse(text);
        if (cidr == null || text.indexOf('/') < 0) {
          throw new IllegalArgumentException(
              "--service-cidr: not an IPv4 or IPv6 CIDR (address/prefix): '" + part + "'");
        }
        out.add(cidr);
      }
    }
    return new ServiceRange(out);
  }

  public boolean isEmpty() {
    return cidrs.isEmpty();
  }

  /** Whether {@code ip} is in one of the blocks. */
  public boolean contains(InetAddress ip) {
    for (Cidr c : cidrs) {
      if (c.contains(ip)) {
        return true;
      }
    }
    return false;
  }

  @Override
  public String toString() {
    return cidrs.isEmpty() ? "none" : cidrs.toString();
  }
}
