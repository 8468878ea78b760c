package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.iptables.CallerAddressRouting;
import dev.nodemesh.bpf.iptables.PodInterception;
import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.bpf.iptables.RedirectRules;
import dev.nodemesh.proxy.agent.EnrolledPod;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.jspecify.annotations.Nullable;

/**
 * nat REDIRECT rules inside each pod's namespace (ip6tables as well for a pod with an IPv6
 * address); the original destination from conntrack. With them, the {@link CallerAddressRouting}
 * that lets the proxy deliver to the app from the caller's address: both in one iptables-restore
 * per family ({@link PodInterception}), so an enrolment spawns one process per family.
 *
 * <p>Remembers which namespaces it installed (and whether with IPv6), so their removal is one
 * transaction that expects exactly that; a namespace it did not install (the proxy restarted) is
 * read first and cleared of whatever of ours it holds, in both families.
 */
public final class IptablesInterception implements Interception {
  private final PodInterception rules;
  private final Map<String, Boolean> installed = new ConcurrentHashMap<>();

  public IptablesInterception(RedirectRules redirect, CallerAddressRouting routing) {
    this.rules = new PodInterception(redirect, routing);
  }

  /** Redirect rules and routing together, all or nothing. */
  @Override
  public void install(EnrolledPod pod) throws IOException {
    install(pod, Prior.NONE);
  }

  /** The listeners play no part here: the rules redirect to their ports. */
  @Override
  public void install(
      EnrolledPod pod, Channel inboundListener, @Nullable Channel inboundListener6, Prior prior)
      throws IOException {
    install(pod, prior);
  }

  private void install(EnrolledPod pod, Prior prior) throws IOException {
    rules.install(Path.of(pod.netnsPath()), pod.hasIpv6(), prior);
    installed.put(pod.netnsPath(), pod.hasIpv6());
  }

  /** The rules live in the namespace: once its path is gone there is nothing to remove. */
  @Override
  public void remove(Path netns) throws IOException {
    Boolean ipv6 = installed.remove(netns.toString());
    if (Files.exists(netns)) {
      if (ipv6 == null) {
        rules.remove(netns);
      } else {
        rules.removeInstalled(netns, ipv6);
      }
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
