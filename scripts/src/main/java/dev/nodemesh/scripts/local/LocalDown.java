package dev.nodemesh.scripts.local;

import dev.nodemesh.cni.runner.CniRunException;
import dev.nodemesh.cni.spec.CniError;
import dev.nodemesh.scripts.local.StateFile.Kind;
import dev.nodemesh.scripts.local.StateFile.Resource;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * {@code nodemesh local down}: removes everything a run's {@link StateFile} lists, newest first:
 * pod apps, then each pod's CNI DEL (through the same chain, with the node proxies still up), then
 * the other processes, then links, namespaces and directories, and the run's CNI state. Idempotent:
 * what is already gone is skipped, and a second run finds no state file and succeeds.
 *
 * <p>Safety: a state file is plain text a person could edit, so only names that carry the run's
 * prefix and directories under /etc/netns/ are ever deleted.
 */
public final class LocalDown {
  private static final Path ETC_NETNS = Path.of("/etc/netns");

  /**
   * How long a proxy training the AOT cache may take to exit: the JVM assembles the cache (a child
   * JVM, tens of MB) after the drain.
   */
  private static final Duration AOT_TRAINING_GRACE = Duration.ofMinutes(3);

  private LocalDown() {}

  /** Returns true when nothing recorded is left (the state file is then deleted too). */
  public static boolean run(Path runDir, PrintStream out) throws IOException {
    StateFile state = StateFile.load(runDir);
    if (state == null) {
      out.println("nothing recorded in " + runDir);
      return true;
    }
    String prefix = state.state().prefix();
    List<Resource> newestFirst = new ArrayList<>(state.state().resources());
    java.util.Collections.reverse(newestFirst);

    // Pods' apps first (processes inside a namespace of ours), then the pods' CNI DEL through the
    // same chain while the node proxies still run, so the nodemesh plugin's DEL unenrols them as
    // on a real node; then the proxies and the control plane. A netns cannot really go while
    // something still runs in it.
    stopProcesses(state, newestFirst, true, out);
    for (Resource r : newestFirst) {
      if (r.kind() == Kind.cni) {
        cniDel(state, runDir, prefix, r, out);
      }
    }
    stopProcesses(state, newestFirst, false, out);
    // eBPF-mode proxies leave their pins and attachments on purpose (a restart adopts them); with
    // the proxy stopped, its uninstall removes them.
    for (Resource r : newestFirst) {
      if (r.kind() == Kind.bpf) {
        uninstallBpf(state, r, out);
      }
    }
    // Anything that got into our namespaces without a recorded pid (up died between starting a
    // process and recording it) is ours too.
    for (Resource r : newestFirst) {
      if (r.kind() == Kind.netns && owned(prefix, r.name())) {
        for (ProcessHandle h : Netns.processes(r.name())) {
          out.println("stopping unrecorded pid " + h.pid() + " in netns " + r.name());
          Daemons.stop(h);
        }
      }
    }
    for (Resource r : newestFirst) {
      if (r.kind() == Kind.process || r.kind() == Kind.cni || r.kind() == Kind.bpf) {
        continue;
      }
      try {
        if (remove(prefix, r)) {
          state.remove(r);
          out.println("removed " + describe(r));
        } else {
          out.println("refused to remove " + describe(r) + ": not named for run " + prefix);
        }
      } catch (IOException e) {
        out.println("could not remove " + describe(r) + ": " + e.getMessage());
      }
    }
    if (!state.state().resources().isEmpty()) {
      out.println(
          state.state().resources().size() + " recorded objects remain; see " + state.path());
      return false;
    }
    // host-local's leases, the runner's result cache, the plugin's records and conflists: all of
    // it belongs to the attachments just deleted.
    deleteTree(CniChain.dir(runDir));
    // The CA's root key and the nodes' bootstrap tokens are secrets of this run only.
    deleteTree(runDir.resolve(LocalUp.CA_DIR));
    try (Stream<Path> s = Files.list(runDir)) {
      for (Path p : s.toList()) {
        String n = p.getFileName().toString();
        if (n.equals("agent.sock")
            || (n.startsWith("agent-") && n.endsWith(".sock"))
            || n.equals(LocalUp.BOOTSTRAP_TOKENS)
            || n.endsWith(".token")) {
          Files.deleteIfExists(p);
        }
      }
    }
    state.delete();
    out.println("local node " + prefix + " is down");
    return true;
  }

  private static boolean remove(String prefix, Resource r) throws IOException {
    switch (r.kind()) {
      case link -> {
        String ns = r.netns();
        if (!owned(prefix, r.name()) || (ns != null && !owned(prefix, ns))) {
          return false;
        }
        // Without a netns the link would be in the root netns, which local mode never uses.
        if (ns != null && Netns.linkExists(ns, r.name())) {
          Exec.ip(ns, "link", "del", r.name());
        }
        return ns != null;
      }
      case netns -> {
        if (!owned(prefix, r.name())) {
          return false;
        }
        if (Netns.exists(r.name())) {
          Exec.check("ip", "netns", "delete", r.name());
        }
        return true;
      }
      case dir -> {
        Path dir = Path.of(r.name()).normalize();
        if (!ETC_NETNS.equals(dir.getParent()) || !owned(prefix, dir.getFileName().toString())) {
          return false;
        }
        deleteTree(dir);
        return true;
      }
      case process -> {
        return Daemons.stop(r);
      }
      case cni, bpf -> {
        return false;
      }
    }
    return false;
  }

  private static void uninstallBpf(StateFile state, Resource r, PrintStream out)
      throws IOException {
    List<String> argv = r.argv();
    if (argv == null || argv.isEmpty()) {
      state.remove(r);
      return;
    }
    Exec.Result result = Exec.run(argv);
    if (result.ok()) {
      state.remove(r);
      out.println("removed the eBPF pins and attachments of " + r.name());
    } else {
      out.println(
          "could not remove the eBPF pins of "
              + r.name()
              + " (exit "
              + result.exitCode()
              + "):\n"
              + result.output());
    }
  }

  private static void stopProcesses(
      StateFile state, List<Resource> newestFirst, boolean inNetns, PrintStream out)
      throws IOException {
    for (Resource r : newestFirst) {
      if (r.kind() == Kind.process && (r.netns() != null) == inNetns) {
        // A proxy training the AOT cache writes it as it exits: give it the time (ProxyAotCache).
        Optional<Path> training =
            r.argv() == null ? Optional.empty() : ProxyAotCache.training(r.argv());
        if (training.isPresent() ? Daemons.stop(r, AOT_TRAINING_GRACE) : Daemons.stop(r)) {
          state.remove(r);
          out.println("stopped " + describe(r));
          if (training.isPresent()) {
            try {
              ProxyAotCache.publish(training.get())
                  .ifPresent(c -> out.println("the proxies' AOT cache for the next up: " + c));
            } catch (IOException e) {
              out.println("no AOT cache from " + training.get() + ": " + e);
            }
          }
        } else {
          out.println("could not stop " + describe(r));
        }
      }
    }
  }

  /**
   * DEL through the chain the attachment was added with. A DEL that cannot run or fails is reported
   * and the record dropped all the same: what the plugins made lives in namespaces and run-dir
   * files that this same {@code down} removes next.
   */
  private static void cniDel(
      StateFile state, Path runDir, String prefix, Resource r, PrintStream out) throws IOException {
    String node = r.netns();
    String config = r.config();
    if (!owned(prefix, r.name()) || node == null || !owned(prefix, node) || config == null) {
      out.println("refused to run DEL for " + describe(r) + ": not named for run " + prefix);
      return;
    }
    Path conflist = Path.of(config);
    if (!Netns.exists(node) || !Files.exists(conflist)) {
      out.println("skipped DEL for " + describe(r) + ": its node netns or conflist is gone");
      state.remove(r);
      return;
    }
    List<String> cniPath = state.state().cniPath();
    List<Path> binPath =
        cniPath == null
            ? CniChain.binPath(runDir, LocalUp.DEFAULT_CNI_PLUGIN_DIR)
            : cniPath.stream().map(Path::of).toList();
    Map<String, String> args = r.args() == null ? Map.of() : r.args();
    try {
      CniChain.runner(binPath, runDir, node)
          .del(CniChain.readConflist(conflist), CniChain.attachment(r.name(), r.name(), args));
      out.println("deleted " + describe(r));
    } catch (CniRunException | CniError | IOException e) {
      out.println(
          "DEL failed for "
              + describe(r)
              + " ("
              + e.getMessage()
              + "); its links go with the namespaces");
    }
    state.remove(r);
  }

  static boolean owned(String prefix, String name) {
    return name.startsWith(prefix);
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> s = Files.walk(dir)) {
      for (Path p : s.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  static String describe(Resource r) {
    return switch (r.kind()) {
      case process ->
          "process " + r.name() + (r.pid() > 0 ? " (pid " + r.pid() + ")" : " (never started)");
      case link -> "link " + r.name() + " in netns " + r.netns();
      case netns -> "netns " + r.name();
      case dir -> "dir " + r.name();
      case cni -> "CNI attachment " + r.name() + " (plugins run in netns " + r.netns() + ")";
      case bpf -> "eBPF pins of " + r.name();
    };
  }
}
