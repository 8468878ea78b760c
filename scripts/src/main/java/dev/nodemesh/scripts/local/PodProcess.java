package dev.nodemesh.scripts.local;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * How local mode runs a process of a pod (an app, the demo's curl): inside the pod's network
 * namespace and, when the node's proxy intercepts with eBPF on a cgroup named by {@code
 * --bpf-cgroup}, inside that cgroup, since a cgroup hook sees only the sockets of processes in the
 * cgroup (or below it). A process that stays outside it would bypass the mesh.
 *
 * <p>Limits: without {@code --bpf-cgroup} the proxy attaches to the cgroup2 hierarchy's root, which
 * every process is below already, so nothing is joined. The cgroup is joined before the command
 * starts (a shell writes its own pid, then execs), so the pid stays the command's own. Apps started
 * again later (not done by local mode today) would have to join it again.
 */
public final class PodProcess {
  private PodProcess() {}

  /**
   * The cgroup that {@code proxyArgs} (a node proxy's flags, or its whole recorded command line)
   * make its pods' processes join: the {@code --bpf-cgroup} of an eBPF (or auto) proxy, else null.
   */
  public static @Nullable Path cgroup(List<String> proxyArgs) {
    if (!LocalUp.usesBpf(proxyArgs)) {
      return null;
    }
    Path cgroup = null;
    for (int i = 0; i < proxyArgs.size(); i++) {
      String a = proxyArgs.get(i);
      if (a.startsWith("--bpf-cgroup=")) {
        cgroup = Path.of(a.substring("--bpf-cgroup=".length()));
      } else if (a.equals("--bpf-cgroup") && i + 1 < proxyArgs.size()) {
        cgroup = Path.of(proxyArgs.get(i + 1));
      }
    }
    return cgroup;
  }

  /**
   * {@code argv} preceded by what makes it join {@code cgroup} first (nothing when null). Put
   * {@code ip netns exec} inside it, never around it: that command remounts {@code /sys} in a mount
   * namespace of its own, where the cgroup2 mount is gone.
   */
  public static List<String> inCgroup(@Nullable Path cgroup, List<String> argv) {
    if (cgroup == null) {
      return List.copyOf(argv);
    }
    List<String> cmd = new ArrayList<>();
    cmd.add("sh");
    cmd.add("-c");
    cmd.add("echo $$ > \"$0\" && exec \"$@\"");
    cmd.add(cgroup.resolve("cgroup.procs").toString());
    cmd.addAll(argv);
    return cmd;
  }

  /**
   * The cgroup of {@code node}'s pods in a recorded run: from the command line of the node's proxy
   * as the journal holds it; null when it runs no eBPF with {@code --bpf-cgroup}, or is not there.
   */
  public static @Nullable Path cgroupOf(StateFile.State state, String node) {
    for (StateFile.Resource r : state.resources()) {
      if (r.kind() == StateFile.Kind.process
          && r.name().equals("proxy:" + node)
          && r.argv() != null) {
        return cgroup(r.argv());
      }
    }
    return null;
  }
}
