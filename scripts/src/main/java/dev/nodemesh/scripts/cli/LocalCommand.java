package dev.nodemesh.scripts.cli;

import dev.nodemesh.scripts.local.LocalDown;
import dev.nodemesh.scripts.local.LocalStatus;
import dev.nodemesh.scripts.local.LocalUp;
import dev.nodemesh.scripts.local.LocalUpgrade;
import dev.nodemesh.scripts.local.Names;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code nodemesh local up|down|status|upgrade-proxy}: a node of network-namespace pods on this
 * machine. Needs root (network namespaces, /etc/netns).
 */
@Command(
    name = "local",
    mixinStandardHelpOptions = true,
    description = "Run a node of pods (network namespaces) on this machine. Needs root.",
    subcommands = {
      LocalCommand.Up.class,
      LocalCommand.Down.class,
      LocalCommand.Status.class,
      LocalCommand.UpgradeProxy.class
    })
final class LocalCommand implements Runnable {
  static final String DEFAULT_RUN_DIR = "/run/nodemesh/local";

  @Spec CommandSpec spec = CommandSpec.create();

  @Override
  public void run() {
    throw new CommandLine.ParameterException(
        spec.commandLine(), "Missing required subcommand (up, down, status or upgrade-proxy)");
  }

  @Command(
      name = "up",
      mixinStandardHelpOptions = true,
      description = {
        "Create a netns per node (each distinct spec.nodeName of the Pods) joined by an"
            + " underlay, start the control plane and a node proxy per node, attach a netns per"
            + " Pod through the CNI chain (bridge + host-local + nodemesh, run inside the node"
            + " netns), and start each pod's app.",
        "Every object is recorded in <run-dir>/state.json before it is created; on failure up"
            + " rolls back, and `local down` undoes a crashed run."
      })
  static final class Up implements Callable<Integer> {
    @Spec CommandSpec spec = CommandSpec.create();

    @Option(
        names = {"-f", "--file"},
        required = true,
        paramLabel = "DIR",
        description = "Directory of Kubernetes-shaped YAML: Pods with status.podIP, Services.")
    Path configDir = Path.of(".");

    @Option(
        names = "--run-dir",
        paramLabel = "DIR",
        defaultValue = DEFAULT_RUN_DIR,
        description = "State file, logs and agent socket (default: ${DEFAULT-VALUE}).")
    Path runDir = Path.of(DEFAULT_RUN_DIR);

    @Option(
        names = "--no-proxy",
        description = "Do not start the node proxy or enrol pods (plain pod-to-pod networking).")
    boolean noProxy;

    @Option(
        names = "--prefix",
        paramLabel = "PREFIX",
        description =
            "Name prefix of every object, [a-z][a-z0-9]{1,7} (default: nm + 4 random hex).")
    String prefix = Names.randomPrefix();

    @Option(
        names = "--service-cidr",
        paramLabel = "CIDR",
        defaultValue = "10.96.0.0/16",
        description =
            "Routed via each pod's eth0 so VIP traffic can be intercepted"
                + " (default: ${DEFAULT-VALUE}).")
    String serviceCidr = "10.96.0.0/16";

    @Option(
        names = "--node-name",
        paramLabel = "NAME",
        defaultValue = "local",
        description =
            "Node of the Pods whose YAML has no spec.nodeName; every distinct spec.nodeName is a"
                + " node of its own (default: ${DEFAULT-VALUE}).")
    String nodeName = "local";

    @Option(
        names = "--admin",
        paramLabel = "HOST:PORT",
        defaultValue = "127.0.0.1:15020",
        description =
            "Admin/metrics address of the first node's proxy; node i gets PORT+i, and port 0"
                + " picks free ports (default: ${DEFAULT-VALUE}).")
    String admin = "127.0.0.1:15020";

    @Option(
        names = "--underlay-cidr",
        paramLabel = "CIDR",
        defaultValue = LocalUp.DEFAULT_UNDERLAY_CIDR,
        description =
            "Addresses of the nodes on the link that joins them (two or more nodes; default:"
                + " ${DEFAULT-VALUE}).")
    String underlayCidr = LocalUp.DEFAULT_UNDERLAY_CIDR;

    @Option(
        names = "--cni-plugin-dir",
        paramLabel = "DIR",
        defaultValue = "/usr/lib/cni",
        description =
            "Where the reference CNI plugins bridge and host-local are (default: ${DEFAULT-VALUE}).")
    Path cniPluginDir = LocalUp.DEFAULT_CNI_PLUGIN_DIR;

    @Option(
        names = "--cni-plugin",
        paramLabel = "FILE",
        description =
            "The nodemesh CNI plugin executable (default: cni-plugin/bin/nodemesh-cni of this"
                + " source tree).")
    @Nullable Path cniPlugin;

    @Option(
        names = "--wait",
        paramLabel = "SECONDS",
        defaultValue = "60",
        description =
            "How long to wait for the agent socket and each app (default: ${DEFAULT-VALUE}).")
    int waitSeconds = 60;

    @Option(
        names = "--proxy-jvm-opt",
        paramLabel = "OPT",
        description =
            "A JVM option for the node proxy process, e.g. -Xmx256m or -XX:+UseParallelGC"
                + " (repeatable); any -XX:AOT... option replaces local mode's AOT cache.")
    List<String> proxyJvmOptions = new ArrayList<>();

    @Option(
        names = "--proxy-arg",
        paramLabel = "ARG",
        description =
            "An argument passed on to `nodemesh proxy`, e.g. --transport=io_uring or --workers=1"
                + " (repeatable). {node} in it stands for the node's name, e.g."
                + " --bpf-cgroup=/sys/fs/cgroup/unified/mesh-{node}: eBPF mode needs a cgroup and"
                + " a pin dir per node.")
    List<String> proxyArgs = new ArrayList<>();

    @Override
    public Integer call() throws Exception {
      try {
        Names.checkPrefix(prefix);
      } catch (IllegalArgumentException e) {
        throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
      }
      for (String cidr : List.of(serviceCidr, underlayCidr)) {
        if (!cidr.matches("\\d{1,3}(\\.\\d{1,3}){3}/\\d{1,2}")) {
          throw new CommandLine.ParameterException(
              spec.commandLine(), "--service-cidr and --underlay-cidr must be IPv4 CIDRs: " + cidr);
        }
      }
      try {
        new ProxyCommand.HostPortConverter().convert(admin);
      } catch (CommandLine.TypeConversionException e) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--admin: " + e.getMessage());
      }
      if (waitSeconds <= 0) {
        throw new CommandLine.ParameterException(spec.commandLine(), "--wait must be > 0");
      }
      LocalUp.Options opts =
          new LocalUp.Options(
              configDir,
              runDir,
              !noProxy,
              prefix,
              serviceCidr,
              nodeName,
              admin,
              Duration.ofSeconds(waitSeconds),
              proxyJvmOptions,
              proxyArgs,
              underlayCidr,
              cniPluginDir,
              cniPlugin);
      try {
        new LocalUp(opts, System.out).run();
      } catch (Exception e) {
        System.err.println("nodemesh local up: " + e.getMessage());
        return 1;
      }
      return 0;
    }
  }

  @Command(
      name = "down",
      mixinStandardHelpOptions = true,
      description = {
        "Stop the processes and delete the namespaces, links and /etc/netns dirs recorded in"
            + " <run-dir>/state.json. Idempotent.",
        "Exit 0 when nothing recorded is left, 1 otherwise."
      })
  static final class Down implements Callable<Integer> {
    @Option(
        names = "--run-dir",
        paramLabel = "DIR",
        defaultValue = DEFAULT_RUN_DIR,
        description = "Run directory given to `up` (default: ${DEFAULT-VALUE}).")
    Path runDir = Path.of(DEFAULT_RUN_DIR);

    @Override
    public Integer call() throws Exception {
      return LocalDown.run(runDir, System.out) ? 0 : 1;
    }
  }

  @Command(
      name = "status",
      mixinStandardHelpOptions = true,
      description = "Print what <run-dir>/state.json records and whether each thing still exists.")
  static final class Status implements Callable<Integer> {
    @Option(
        names = "--run-dir",
        paramLabel = "DIR",
        defaultValue = DEFAULT_RUN_DIR,
        description = "Run directory given to `up` (default: ${DEFAULT-VALUE}).")
    Path runDir = Path.of(DEFAULT_RUN_DIR);

    @Override
    public Integer call() throws Exception {
      LocalStatus.run(runDir, System.out);
      return 0;
    }
  }

  @Command(
      name = "upgrade-proxy",
      mixinStandardHelpOptions = true,
      description = {
        "Replace the node proxy of each node (or of --node) by a fresh process with the same"
            + " command line, without refusing a connection: the new one listens in every pod"
            + " beside the old one (SO_REUSEPORT) and takes the agent socket over; once it is"
            + " ready, the old one gets SIGTERM, drains and exits. Returns when it has exited.",
        "Exit 0 when every chosen node was upgraded, 1 otherwise (with the reason)."
      })
  static final class UpgradeProxy implements Callable<Integer> {
    @Spec CommandSpec spec = CommandSpec.create();

    @Option(
        names = "--run-dir",
        paramLabel = "DIR",
        defaultValue = DEFAULT_RUN_DIR,
        description = "Run directory given to `up` (default: ${DEFAULT-VALUE}).")
    Path runDir = Path.of(DEFAULT_RUN_DIR);

    @Option(
        names = "--node",
        paramLabel = "NAME",
        description = "Only this node (default: every node of the run, one after another).")
    @Nullable String node;

    @Option(
        names = "--wait",
        paramLabel = "SECONDS",
        defaultValue = "120",
        description =
            "How long the new proxy may take to be ready before the upgrade is abandoned (the old"
                + " one keeps running; default: ${DEFAULT-VALUE}).")
    int waitSeconds = 120;

    @Option(
        names = "--stop-timeout",
        paramLabel = "SECONDS",
        defaultValue = "60",
        description =
            "How long the old proxy may take to drain and exit after SIGTERM before it is killed;"
                + " keep it above its --drain-grace (default: ${DEFAULT-VALUE}).")
    int stopSeconds = 60;

    @Override
    public Integer call() throws Exception {
      if (waitSeconds <= 0 || stopSeconds <= 0) {
        throw new CommandLine.ParameterException(
            spec.commandLine(), "--wait and --stop-timeout must be > 0");
      }
      LocalUpgrade.Options opts =
          new LocalUpgrade.Options(
              runDir, node, Duration.ofSeconds(waitSeconds), Duration.ofSeconds(stopSeconds));
      try {
        new LocalUpgrade(opts, System.out).run();
      } catch (Exception e) {
        System.err.println("nodemesh local upgrade-proxy: " + e.getMessage());
        return 1;
      }
      return 0;
    }
  }
}
