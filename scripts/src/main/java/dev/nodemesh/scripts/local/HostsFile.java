package dev.nodemesh.scripts.local;

import dev.nodemesh.scripts.local.Manifest.PodSpec;
import dev.nodemesh.scripts.local.Manifest.ServiceSpec;

/**
 * The {@code /etc/hosts} each pod sees through {@code ip netns exec} (which bind-mounts {@code
 * /etc/netns/<netns>/hosts}): stands in for cluster DNS, so apps can call services by name.
 *
 * <p>Limits: no search domains, so only the listed forms resolve ({@code <svc>}, {@code
 * <svc>.<ns>}, {@code <svc>.<ns>.svc.cluster.local}, and bare pod names). A short service name
 * resolves the same in every namespace; two services of one name in different namespaces make the
 * short form ambiguous (the first listed wins, as in any hosts file).
 */
public final class HostsFile {
  private HostsFile() {}

  /** The file's text. Pure, so it is tested without touching /etc. */
  public static String render(Manifest manifest) {
    StringBuilder sb = new StringBuilder();
    sb.append("# written by nodemesh local up; removed by nodemesh local down\n");
    sb.append("127.0.0.1\tlocalhost\n");
    for (ServiceSpec s : manifest.services()) {
      sb.append(s.clusterIp())
          .append('\t')
          .append(s.name())
          .append(' ')
          .append(s.name())
          .append('.')
          .append(s.namespace())
          .append(' ')
          .append(s.name())
          .append('.')
          .append(s.namespace())
          .append(".svc.cluster.local\n");
    }
    for (PodSpec p : manifest.pods()) {
      sb.append(p.ip()).append('\t').append(p.name()).append('\n');
    }
    return sb.toString();
  }
}
