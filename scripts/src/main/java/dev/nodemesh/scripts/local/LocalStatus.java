package dev.nodemesh.scripts.local;

import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * {@code nodemesh local status}: what a run recorded and whether each thing still exists. Reads
 * only; changes nothing.
 */
public final class LocalStatus {
  private LocalStatus() {}

  /** Returns the number of recorded objects that still exist. */
  public static int run(Path runDir, PrintStream out) throws IOException {
    StateFile state = StateFile.load(runDir);
    if (state == null) {
      out.println("nothing recorded in " + runDir + " (no local node is up)");
      return 0;
    }
    StateFile.State s = state.state();
    out.printf(
        "run %s  config %s  proxy %s  state %s%n",
        s.prefix(), s.configDir(), s.proxy() ? "on" : "off", state.path());
    if (s.nodes() != null) {
      out.printf(
          "  %-12s %-24s %-16s %-15s %-22s %s%n",
          "NODE", "NETNS", "PODS", "UNDERLAY", "PROXY ADMIN", "PODS ON IT");
      for (StateFile.NodeRecord n : s.nodes()) {
        out.printf(
            "  %-12s %-24s %-16s %-15s %-22s %s%n",
            n.name(),
            n.netns() + (Netns.exists(n.netns()) ? "" : " (gone)"),
            n.subnet(),
            s.nodes().size() > 1 ? n.underlayIp() : "-",
            n.admin().isEmpty() ? "-" : n.admin(),
            String.join(",", n.pods()));
      }
    }
    int live = 0;
    for (Resource r : s.resources()) {
      boolean exists = exists(r);
      live += exists ? 1 : 0;
      out.printf("  %-8s %s%n", exists ? "present" : "gone", LocalDown.describe(r));
    }
    out.printf("%d of %d recorded objects present%n", live, s.resources().size());
    return live;
  }

  static boolean exists(Resource r) throws IOException {
    return switch (r.kind()) {
      case netns -> Netns.exists(r.name());
      case link -> r.netns() != null && Netns.linkExists(r.netns(), r.name());
      case dir -> Files.exists(Path.of(r.name()));
      case process -> Daemons.alive(r);
      case cni -> Netns.linkExists(r.name(), CniChain.IFNAME);
      case bpf -> r.argv() != null && Files.isDirectory(LocalUp.bpfPinDir(r.argv()));
    };
  }
}
