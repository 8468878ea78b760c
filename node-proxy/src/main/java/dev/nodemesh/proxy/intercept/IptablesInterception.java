package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.iptables.CallerAddressRouting;
import dev.nodemesh.bpf.iptables.PodInterception;
import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * nat REDIRECT rules inside each pod's namespace (ip6tables as well for a pod with an IPv6
 * address); the original destination from conntrack. With them, the {@link CallerAddressRouting}
 * that lets the proxy deliver to the app from the caller's address.
 */
public final class IptablesInterception implements Interception {
  private final PodInterception rules;
  private final CallerAddressRouting routing;

  public IptablesInterception(PodInterception rules, CallerAddressRouting routing) {
    this.rules = rules;
    this.routing = routing;
  }

  /** Both or neither: when the routing cannot be installed, the redirect rules go again. */
  @Override
  public void install(EnrolledPod pod) throws IOException {
    Path netns = Path.of(pod.netnsPath());
    rules.install(netns, pod.hasIpv6());
    try {
      routing.install(netns, false); // IPv4 only: see DirectDialer
    } catch (IOException | RuntimeException e) {
      try {
        rules.remove(netns);
      } catch (IOException undo) {
        e.addSuppressed(undo);
      }
      throw e;
    }
  }

  /** The rules live in the namespace: once its path is gone there is nothing to remove. */
  @Override
  public void remove(Path netns) throws IOException {
    if (Files.exists(netns)) {
      try {
        rules.remove(netns);
      } catch (IOException e) {
        try {
          routing.remove(netns);
        } catch (IOException also) {
          e.addSuppressed(also);
        }
        throw e;
      }
      routing.remove(netns);
    }
  }

  @Override
  public InetSocketAddress originalDestination(Channel accepted, EnrolledPod source)
      throws IOException {
    return Interception.originalDestination(accepted);
  }

  @Override
  public void close() {}

  @Override
  public String toString() {
    return "iptables";
  }
}
