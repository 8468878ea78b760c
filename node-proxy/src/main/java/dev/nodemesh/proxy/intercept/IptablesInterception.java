package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.iptables.PodInterception;
import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * nat REDIRECT rules inside each pod's namespace (ip6tables as well for a pod with an IPv6
 * address); the original destination from conntrack.
 */
public final class IptablesInterception implements Interception {
  private final PodInterception rules;

  public IptablesInterception(PodInterception rules) {
    this.rules = rules;
  }

  @Override
  public void install(EnrolledPod pod) throws IOException {
    rules.install(Path.of(pod.netnsPath()), pod.hasIpv6());
  }

  /** The rules live in the namespace: once its path is gone there is nothing to remove. */
  @Override
  public void remove(Path netns) throws IOException {
    if (Files.exists(netns)) {
      rules.remove(netns);
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
