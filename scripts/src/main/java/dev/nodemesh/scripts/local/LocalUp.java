package dev.nodemesh.scripts.local;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.agent.AgentClient;
import dev.nodemesh.cni.runner.CniRunner;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.model.cni.AgentWire;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.scripts.local.Manifest.AppSpec;
import dev.nodemesh.scripts.local.Manifest.PodSpec;
import dev.nodemesh.scripts.local.StateFile.Resource;
import dev.nodemesh.scripts.sampleapp.SampleApp;
import java.io.IOException;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * {@code nodemesh local up}: builds a cluster of nodes on this machine. Each node (one per distinct
 * {@code spec.nodeName} of the Pods, see {@link Topology}) is a network namespace; its pods are
 * network namespaces attached through the CNI chain ({@link CniChain}: the reference bridge and
 * host-local plugins, run inside the node netns, with the nodemesh plugin chained last, which
 * enrols the pod with that node's proxy). Nodes are joined by an underlay (a veth pair for two
 * nodes, a bridge in an underlay netns for more) and route each other's pod /24 over it. One
 * control plane serves the YAML to one node proxy per node; pod apps run inside their netns.
 *
 * <p>Every object is journalled in {@link StateFile} before it is created. On any failure up rolls
 * back through {@link LocalDown}, and a crash is undone by running {@code down} later.
 *
 * <p>Limits: IPv4 only; one /24 per node; the node proxies run in the root netns (as on a real
 * node, where the proxy pod uses the host network), but no link, route or address is ever made
 * there.
 */
public final class LocalUp {
  /** The CA's root (ca.crt, ca.key) under the run dir; removed by down. */
  static final String CA_DIR = "ca";

  /** node → token for the control plane; {@code <node>.token} beside it for each proxy. */
  static final String BOOTSTRAP_TOKENS = "bootstrap-tokens";

  private static final ObjectMapper CONFIG_DUMP = new ObjectMapper();

  /**
   * Flags of {@code local up}.
   *
   * @param nodeName the node of pods whose YAML names none
   * @param adminAddress the first node's proxy admin address; node {@code i} gets port + i, and
   *     port 0 picks a free port for each
   * @param underlayCidr addresses of the nodes on the underlay
   * @param cniPluginDir where the reference plugins (bridge, host-local) are
   * @param cniPlugin the nodemesh plugin's wrapper; null finds cni-plugin/bin/nodemesh-cni
   */
  public record Options(
      Path configDir,
      Path runDir,
      boolean proxy,
      String prefix,
      String serviceCidr,
      String nodeName,
      String adminAddress,
      Duration waitTimeout,
      List<String> proxyJvmOptions,
      List<String> proxyArgs,
      String underlayCidr,
      Path cniPluginDir,
      @Nullable Path cniPlugin) {
    public Options {
      proxyJvmOptions = List.copyOf(proxyJvmOptions);
      proxyArgs = List.copyOf(proxyArgs);
    }

    /** The defaults for the multi-node and CNI settings. */
    public Options(
        Path configDir,
        Path runDir,
        boolean proxy,
        String prefix,
        String serviceCidr,
        String nodeName,
        String adminAddress,
        Duration waitTimeout,
        List<String> proxyJvmOptions,
        List<String> proxyArgs) {
      this(
          configDir,
          runDir,
          proxy,
          prefix,
          serviceCidr,
          nodeName,
          adminAddress,
          waitTimeout,
          proxyJvmOptions,
          proxyArgs,
          DEFAULT_UNDERLAY_CIDR,
          DEFAULT_CNI_PLUGIN_DIR,
          null);
    }
  }

  /** Addresses of the nodes on the underlay, by default. */
  public static final String DEFAULT_UNDERLAY_CIDR = "10.210.0.0/24";

  /** Debian's containernetworking-plugins. */
  public static final Path DEFAULT_CNI_PLUGIN_DIR = Path.of("/usr/lib/cni");

  /**
   * The node proxy's JVM options unless overridden (--proxy-jvm-opt comes later and wins); then the
   * AOT cache ({@link ProxyAotCache}). Chosen by scripts/bench/footprint (README, "Footprint,
   * start-up and the proxy's JVM options"), and the DaemonSet's {@code JDK_JAVA_OPTIONS} holds the
   * same list ({@code DeployManifestsTest} keeps them equal) but for the heap's ceiling:
   *
   * <ul>
   *   <li>Serial GC, a fixed 48 MB heap with an 8 MB young generation: the heap's resident pages
   *       are the young generation, all of it touched between two collections, plus what the old
   *       generation ever held; with 100 pods about 24 MB are live. Serial has no GC threads and no
   *       Parallel's 4 MB of GC structures; an 8 MB young generation is collected more often (about
   *       once a second at 1,000 req/s) in pauses of a few ms, below the proxy's p99. L4 relaying
   *       keeps its buffers off-heap.
   *   <li>{@code -XX:MetaspaceSize=64m}: the first metaspace high-water mark above what the proxy
   *       loads (about 55 MB), so its start-up is not interrupted by two full collections of 60-140
   *       ms ("Metadata GC Threshold") while classes load. It commits nothing by itself.
   *   <li>The native heap trimmed every 5 s: glibc keeps what the JIT compilers' arenas freed,
   *       about 30 MB of RSS with 100 pods, for one malloc_trim call per interval.
   *   <li>{@code -Dio.netty.jfr.enabled=false}: Netty 4.2 otherwise loads JFR (about 140 classes)
   *       for allocator events nobody records.
   *   <li>{@code --sun-misc-unsafe-memory-access=allow} (JDK 23+): from Java 25 Netty turns its use
   *       of {@code sun.misc.Unsafe} off unless the JVM allows it (JEP 498 would warn), and every
   *       byte a {@code ByteBuf} reads or writes then goes through {@code ByteBuffer}'s checked
   *       accessors: about a tenth of the L7 event loop's samples (issue 19, scripts/bench/l7cpu).
   * </ul>
   *
   * <p>The proxies run on this JVM's java; the trim flag is a product flag from JDK 22 and the
   * unsafe one from 23, so an older JDK (17 is supported) starts them without those rather than
   * failing on an unknown option.
   */
  public static final List<String> PROXY_DEFAULT_JVM_OPTIONS =
      proxyDefaultJvmOptions(Runtime.version().feature());

  /** {@link #PROXY_DEFAULT_JVM_OPTIONS} for a JVM of that feature release (25: the image's). */
  public static List<String> proxyDefaultJvmOptions(int jdk) {
    List<String> o =
        new ArrayList<>(
            List.of(
                "-XX:+UseSerialGC",
                "-Xms48m",
                "-Xmx48m",
                "-Xmn8m",
                "-XX:MetaspaceSize=64m",
                "-Dio.netty.jfr.enabled=false"));
    if (jdk >= 22) {
      o.add("-XX:TrimNativeHeapInterval=5000");
    }
    if (jdk >= 23) {
      o.add("--sun-misc-unsafe-memory-access=allow");
    }
    return List.copyOf(o);
  }

  /**
   * In a {@code --proxy-arg}, stands for the node's name, e.g. {@code
   * --bpf-cgroup=/sys/fs/cgroup/unified/mesh/{node}}: the proxies of an eBPF run must not share a
   * cgroup or a pin dir.
   */
  public static final String NODE = "{node}";

  /** Longest Unix socket path (sun_path is 108 bytes with the terminating NUL). */
  private static final int MAX_SOCKET_PATH = 107;

  private final Options opts;
  private final PrintStream out;

  public LocalUp(Options opts, PrintStream out) {
    this.opts = opts;
    this.out = out;
  }

  /** One node as this run builds it. */
  private record NodePlan(
      Topology.Node node,
      String netns,
      String bridge,
      String network,
      Path agentSocket,
      String admin) {}

  /** Brings the cluster up, or rolls back and throws. */
  public void run() throws Exception {
    Manifest manifest = Manifest.read(opts.configDir());
    String prefix = Names.checkPrefix(opts.prefix());
    Topology topology =
        Topology.of(manifest, opts.nodeName(), opts.serviceCidr(), opts.underlayCidr());
    checkUnique(manifest, topology, prefix);
    Path wrapper = null;
    if (opts.proxy()) {
      wrapper = opts.cniPlugin() != null ? opts.cniPlugin() : CniChain.locateWrapper();
    }
    List<NodePlan> plans = plan(topology, prefix);
    StateFile state = StateFile.create(opts.runDir(), prefix, opts.configDir(), opts.proxy());
    try {
      build(manifest, topology, plans, wrapper, state, prefix);
      printSummary(plans, prefix);
    } catch (Exception | Error e) {
      out.println("local up failed (" + e.getMessage() + "); rolling back");
      try {
        LocalDown.run(opts.runDir(), out);
      } catch (IOException | RuntimeException rollback) {
        // Keep the first failure as the one reported; the state file still lists what is left.
        e.addSuppressed(rollback);
      }
      throw e;
    }
  }

  private List<NodePlan> plan(Topology topology, String prefix) throws IOException {
    HostPort admin = HostPort.parse(opts.adminAddress());
    List<NodePlan> plans = new ArrayList<>();
    for (Topology.Node n : topology.nodes()) {
      Path socket = opts.runDir().resolve("agent-" + n.name() + ".sock").toAbsolutePath();
      // The CNI plugin's framed socket beside it is the longer path of the two.
      Path framed = AgentWire.socketFor(socket);
      if (framed.toString().length() > MAX_SOCKET_PATH) {
        throw new IOException(
            "agent socket path " + framed + " is longer than " + MAX_SOCKET_PATH + " bytes");
      }
      // Port 0: pick a free port now, so the state file names the address the proxy really uses.
      int port = admin.port() == 0 ? freeLoopbackPort() : admin.port() + n.index();
      if (port > 65535) {
        throw new IllegalArgumentException("admin port " + port + " of node " + n.name());
      }
      plans.add(
          new NodePlan(
              n,
              Names.nodeNetns(prefix, n.name()),
              Names.bridge(prefix, n.index()),
              Names.network(prefix, n.name()),
              socket,
              opts.proxy() ? admin.host() + ":" + port : ""));
    }
    return plans;
  }

  private void build(
      Manifest manifest,
      Topology topology,
      List<NodePlan> plans,
      @Nullable Path wrapper,
      StateFile state,
      String prefix)
      throws Exception {
    List<Path> binPath = CniChain.binPath(opts.runDir(), opts.cniPluginDir());
    state.setNodes(
        plans.stream().map(LocalUp::record).toList(),
        binPath.stream().map(Path::toString).toList());
    if (wrapper != null) {
      CniChain.installPlugin(opts.runDir(), wrapper);
    }

    for (NodePlan p : plans) {
      addNetns(state, p.netns());
      // The node routes between its bridge and the underlay; the root netns is never touched.
      Exec.check("ip", "netns", "exec", p.netns(), "sysctl", "-q", "-w", "net.ipv4.ip_forward=1");
      // The bridge plugin makes it on the first ADD; recorded first so down removes it.
      state.add(Resource.link(p.bridge(), p.netns()));
    }
    Underlay.build(state, prefix, topology, plans.stream().map(NodePlan::netns).toList());

    String hosts = HostsFile.render(manifest);
    for (PodSpec pod : manifest.pods()) {
      addPodNetns(state, prefix, pod, hosts);
    }

    if (opts.proxy()) {
      startControlAndProxies(state, plans);
    }
    for (NodePlan p : plans) {
      ObjectNode conflist =
          CniChain.conflist(
              p.network(),
              p.bridge(),
              topology,
              p.node(),
              opts.runDir(),
              opts.proxy() ? p.agentSocket() : null);
      Path file = CniChain.writeConflist(opts.runDir(), conflist);
      CniRunner runner = CniChain.runner(binPath, opts.runDir(), p.netns());
      for (PodSpec pod : p.node().pods()) {
        String podNetns = Names.podNetns(prefix, pod.namespace(), pod.name());
        Map<String, String> args = CniChain.args(pod);
        // Recorded first: a half-done ADD is undone by DEL, which is idempotent.
        state.add(Resource.cni(podNetns, p.netns(), file, args));
        JsonNode result = runner.add(conflist, CniChain.attachment(podNetns, podNetns, args));
        String got = result.path("ips").path(0).path("address").asText("");
        if (!got.equals(pod.ip() + "/24")) {
          throw new IOException(
              "pod " + pod.name() + " got " + got + " from host-local, not " + pod.ip() + "/24");
        }
      }
    }
    if (opts.proxy()) {
      for (NodePlan p : plans) {
        // Ready = config from the control plane in force and every pod of the node enrolled.
        Resource proxy = processNamed(state, proxyRole(p));
        awaitHttpOk(URI.create("http://" + p.admin() + "/ready"), proxy, proxyLog(p));
      }
      // A node is ready once the pods of its own config are enrolled, but a pod enrolled on it may
      // not be in its config yet (the control plane pushes to each node in its own time, and may
      // have told node-1 first): its proxy then refuses the tunnel's inbound streams to that pod
      // (400, which node-1 answers 503 UF). Up returns once every node's config knows its pods.
      for (NodePlan p : plans) {
        Set<String> own = new HashSet<>();
        for (PodSpec pod : p.node().pods()) {
          own.add(pod.namespace() + "/" + pod.name());
        }
        awaitWorkloads(state, p, own);
      }
    }

    List<Started> apps = new ArrayList<>();
    for (NodePlan p : plans) {
      // In eBPF mode an app joins its node's cgroup, so its own outbound calls are captured too.
      Path cgroup = opts.proxy() ? PodProcess.cgroup(nodeProxyArgs(p)) : null;
      for (PodSpec pod : p.node().pods()) {
        if (pod.app() instanceof AppSpec.None) {
          continue;
        }
        String netns = Names.podNetns(prefix, pod.namespace(), pod.name());
        Path log = opts.runDir().resolve(pod.name() + ".log");
        Resource r = Daemons.start(state, "app:" + pod.name(), netns, cgroup, appArgv(pod), log);
        apps.add(new Started(pod, netns, r, log));
      }
    }
    for (Started s : apps) {
      awaitApp(s);
    }
  }

  private static StateFile.NodeRecord record(NodePlan p) {
    return new StateFile.NodeRecord(
        p.node().name(),
        p.netns(),
        p.bridge(),
        p.node().subnet().toString(),
        p.node().underlayIp(),
        p.admin(),
        p.agentSocket().toString(),
        p.node().pods().stream().map(PodSpec::name).toList());
  }

  private record Started(PodSpec pod, String netns, Resource process, Path log) {}

  private record HostPort(String host, int port) {
    static HostPort parse(String s) {
      int colon = s.lastIndexOf(':');
      if (colon <= 0) {
        throw new IllegalArgumentException("admin address must be HOST:PORT, got " + s);
      }
      return new HostPort(s.substring(0, colon), Integer.parseInt(s.substring(colon + 1)));
    }
  }

  static void addNetns(StateFile state, String name) throws IOException {
    state.add(Resource.netns(name));
    Exec.check("ip", "netns", "add", name);
    Exec.ip(name, "link", "set", "lo", "up");
  }

  /** The pod's netns and hosts file; its eth0, address and routes come from the CNI chain. */
  private void addPodNetns(StateFile state, String prefix, PodSpec pod, String hosts)
      throws IOException {
    String netns = Names.podNetns(prefix, pod.namespace(), pod.name());
    addNetns(state, netns);
    Path dir = Path.of("/etc/netns", netns);
    state.add(Resource.dir(dir));
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("hosts"), hosts, StandardCharsets.UTF_8);
  }

  private static String proxyRole(NodePlan p) {
    return "proxy:" + p.node().name();
  }

  private Path proxyLog(NodePlan p) {
    return opts.runDir().resolve("proxy-" + p.node().name() + ".log");
  }

  private static Resource processNamed(StateFile state, String role) {
    return state.state().resources().stream()
        .filter(r -> r.kind() == StateFile.Kind.process && r.name().equals(role))
        .findFirst()
        .orElseThrow(() -> new IllegalStateException("no process " + role + " recorded"));
  }

  /**
   * One control plane for the cluster, then one node proxy per node, each with its own agent
   * socket, admin address and node name, all taking config from that control plane.
   */
  private void startControlAndProxies(StateFile state, List<NodePlan> plans) throws Exception {
    // The control plane serves the YAML directory over xDS; the proxies get everything from it.
    int xdsPort = freeLoopbackPort();
    int controlAdminPort = freeLoopbackPort();
    Path controlLog = opts.runDir().resolve("control.log");
    // Identity: the control plane's CA keeps its root in the run dir; each node proxy proves its
    // node with its own bootstrap token and may get certificates only for that node's pods. xDS and
    // the CA are served over TLS that the proxies verify against that root.
    List<String> nodes = plans.stream().map(p -> p.node().name()).toList();
    BootstrapTokens.generate(opts.runDir().resolve(BOOTSTRAP_TOKENS), nodes);
    Resource control =
        Daemons.start(
            state,
            "control",
            null,
            javaCommand(
                List.of(),
                "control",
                "--source=dir:" + opts.configDir().toAbsolutePath(),
                "--listen",
                "127.0.0.1:" + xdsPort,
                "--admin",
                "127.0.0.1:" + controlAdminPort,
                "--ca-dir",
                opts.runDir().resolve(CA_DIR).toString(),
                "--bootstrap-tokens",
                opts.runDir().resolve(BOOTSTRAP_TOKENS).toString(),
                "--tls-san",
                "127.0.0.1"),
            controlLog);
    awaitHttpOk(URI.create("http://127.0.0.1:" + controlAdminPort + "/ready"), control, controlLog);
    List<Resource> proxies = new ArrayList<>();
    String classPath = System.getProperty("java.class.path");
    Optional<Path> aot = ProxyAotCache.forClassPath(classPath, Runtime.version().feature());
    for (NodePlan p : plans) {
      List<String> args = proxyArgs(p, xdsPort);
      if (usesBpf(args)) {
        // Recorded before the proxy can pin anything: down runs it once the proxy has stopped.
        List<String> uninstall = new ArrayList<>(List.of("proxy", "--uninstall"));
        uninstall.addAll(args.subList(1, args.size()));
        state.add(
            Resource.bpf(proxyRole(p), javaCommand(List.of(), uninstall.toArray(String[]::new))));
      }
      List<String> jvm = new ArrayList<>(PROXY_DEFAULT_JVM_OPTIONS);
      // An --proxy-jvm-opt naming an AOT cache of its own replaces ours (the JVM refuses some
      // pairs of AOT options).
      if (aot.isPresent()
          && opts.proxyJvmOptions().stream().noneMatch(o -> o.startsWith("-XX:AOT"))) {
        jvm.addAll(ProxyAotCache.options(aot.get(), classPath, p == plans.get(0)));
      }
      jvm.addAll(opts.proxyJvmOptions());
      List<String> argv = javaCommand(jvm, args.toArray(String[]::new));
      proxies.add(Daemons.start(state, proxyRole(p), null, argv, proxyLog(p)));
    }
    for (int i = 0; i < plans.size(); i++) {
      NodePlan p = plans.get(i);
      try (AgentClient agent = new AgentClient(p.agentSocket(), Duration.ofSeconds(10))) {
        awaitAgent(agent, p.agentSocket(), proxies.get(i), proxyLog(p));
      }
    }
  }

  /** True when the proxy's flags ask for eBPF interception (ebpf, or auto, which may pick it). */
  static boolean usesBpf(List<String> proxyArgs) {
    String mode = "iptables";
    for (int i = 0; i < proxyArgs.size(); i++) {
      String a = proxyArgs.get(i);
      if (a.startsWith("--intercept=")) {
        mode = a.substring("--intercept=".length());
      } else if (a.equals("--intercept") && i + 1 < proxyArgs.size()) {
        mode = proxyArgs.get(i + 1);
      }
    }
    return !mode.equals("iptables");
  }

  /** The proxy's {@code --bpf-pin-dir} among its flags, or the proxy's default. */
  static Path bpfPinDir(List<String> proxyArgs) {
    Path dir = InterceptionMode.DEFAULT_PIN_DIR;
    for (int i = 0; i < proxyArgs.size(); i++) {
      String a = proxyArgs.get(i);
      if (a.startsWith("--bpf-pin-dir=")) {
        dir = Path.of(a.substring("--bpf-pin-dir=".length()));
      } else if (a.equals("--bpf-pin-dir") && i + 1 < proxyArgs.size()) {
        dir = Path.of(proxyArgs.get(i + 1));
      }
    }
    return dir;
  }

  private List<String> proxyArgs(NodePlan p, int xdsPort) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "proxy",
                "--xds",
                "127.0.0.1:" + xdsPort,
                "--agent-socket",
                p.agentSocket().toString(),
                "--cni-run-dir",
                CniChain.recordsDir(opts.runDir(), p.network()).toString(),
                // The range the VIPs are allocated from: refused before the first config.
                "--service-cidr",
                opts.serviceCidr(),
                "--admin",
                p.admin(),
                "--node-name",
                p.node().name(),
                "--ca-root",
                opts.runDir().resolve(CA_DIR).resolve("ca.crt").toString(),
                "--bootstrap-token-file",
                opts.runDir().resolve(p.node().name() + ".token").toString()));
    args.addAll(nodeProxyArgs(p));
    return args;
  }

  /**
   * The {@code --proxy-arg} flags for node {@code p}'s proxy, each {@link #NODE} in them replaced
   * by the node's name: in eBPF mode every node needs a cgroup and a pin dir of its own.
   */
  private List<String> nodeProxyArgs(NodePlan p) {
    return forNode(opts.proxyArgs(), p.node().name());
  }

  /** {@code proxyArgs} with every {@link #NODE} in them replaced by {@code node}. */
  static List<String> forNode(List<String> proxyArgs, String node) {
    return proxyArgs.stream().map(a -> a.replace(NODE, node)).toList();
  }

  /**
   * The same java and class path as this launcher, so it equals `bin/nodemesh ...` and also works
   * from tests, where there is no jar yet.
   */
  private List<String> javaCommand(List<String> jvmOptions, String... args) {
    List<String> argv = new ArrayList<>();
    argv.addAll(
        List.of(
            javaBin(),
            "--add-opens",
            "java.base/sun.nio.ch=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.io=ALL-UNNAMED",
            "--enable-native-access=ALL-UNNAMED"));
    argv.addAll(jvmOptions);
    argv.addAll(
        List.of("-cp", System.getProperty("java.class.path"), "dev.nodemesh.scripts.cli.Main"));
    argv.addAll(List.of(args));
    return argv;
  }

  private static int freeLoopbackPort() throws IOException {
    try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
      return s.getLocalPort();
    }
  }

  /** Waits until {@code url} answers 200, failing early if the daemon behind it has exited. */
  private void awaitHttpOk(URI url, Resource daemon, Path log)
      throws IOException, InterruptedException {
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.nanoTime() + opts.waitTimeout().toNanos();
    while (System.nanoTime() < deadline) {
      if (!Daemons.alive(daemon)) {
        throw new IOException(daemon.name() + " exited; last lines of " + log + ":\n" + tail(log));
      }
      try {
        HttpResponse<Void> r =
            http.send(
                HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(2)).build(),
                HttpResponse.BodyHandlers.discarding());
        if (r.statusCode() == 200) {
          return;
        }
      } catch (IOException e) {
        // Not listening yet.
      }
      Thread.sleep(100);
    }
    throw new IOException(url + " not ready within " + opts.waitTimeout() + "; see " + log);
  }

  /** Waits until the node's proxy's config in force ({@code /config_dump}) lists every pod. */
  private void awaitWorkloads(StateFile state, NodePlan p, Set<String> pods)
      throws IOException, InterruptedException {
    Resource proxy = processNamed(state, proxyRole(p));
    URI url = URI.create("http://" + p.admin() + "/config_dump");
    HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(2)).build();
    long deadline = System.nanoTime() + opts.waitTimeout().toNanos();
    Set<String> missing = pods;
    while (System.nanoTime() < deadline) {
      if (!Daemons.alive(proxy)) {
        throw new IOException(
            proxy.name() + " exited; last lines of " + proxyLog(p) + ":\n" + tail(proxyLog(p)));
      }
      HttpResponse<String> r =
          http.send(
              HttpRequest.newBuilder(url).timeout(Duration.ofSeconds(2)).build(),
              HttpResponse.BodyHandlers.ofString(StandardCharsets.UTF_8));
      if (r.statusCode() == 200) {
        Set<String> left = new HashSet<>(pods);
        for (JsonNode w : CONFIG_DUMP.readTree(r.body()).path("workloads")) {
          left.remove(w.path("namespace").asText() + "/" + w.path("name").asText());
        }
        if (left.isEmpty()) {
          return;
        }
        missing = left;
      }
      Thread.sleep(100);
    }
    throw new IOException(
        "the proxy of "
            + p.node().name()
            + " did not learn of "
            + missing
            + " within "
            + opts.waitTimeout()
            + "; see "
            + proxyLog(p));
  }

  private void awaitAgent(AgentClient agent, Path socket, Resource proxy, Path log)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + opts.waitTimeout().toNanos();
    RuntimeException last = null;
    while (System.nanoTime() < deadline) {
      if (!Daemons.alive(proxy)) {
        throw new IOException("node proxy exited; last lines of " + log + ":\n" + tail(log));
      }
      if (Files.exists(socket)) {
        try {
          agent.listPods();
          return;
        } catch (RuntimeException e) {
          last = e;
        }
      }
      Thread.sleep(200);
    }
    throw new IOException(
        "agent socket " + socket + " did not answer within " + opts.waitTimeout() + ": " + last);
  }

  private void awaitApp(Started s) throws IOException, InterruptedException {
    List<Integer> ports = new ArrayList<>();
    if (s.pod().app() instanceof AppSpec.SampleApp app) {
      if (app.httpPort() > 0) {
        ports.add(app.httpPort());
      }
      if (app.tcpPort() > 0) {
        ports.add(app.tcpPort());
      }
    }
    for (int port : ports) {
      if (!Netns.awaitTcp(
          s.netns(), s.pod().ip(), port, opts.waitTimeout(), () -> Daemons.alive(s.process()))) {
        throw new IOException(
            "app of pod "
                + s.pod().name()
                + " does not accept on "
                + s.pod().ip()
                + ":"
                + port
                + "; last lines of "
                + s.log()
                + ":\n"
                + tail(s.log()));
      }
    }
    // A command app has no declared ports to probe; at least make sure it did not die at once.
    if (ports.isEmpty() && !Daemons.alive(s.process())) {
      throw new IOException("app of pod " + s.pod().name() + " exited:\n" + tail(s.log()));
    }
  }

  static List<String> appArgv(PodSpec pod) {
    if (pod.app() instanceof AppSpec.SampleApp app) {
      List<String> argv =
          new ArrayList<>(
              List.of(
                  javaBin(),
                  "-Xmx32m",
                  "-XX:+UseSerialGC",
                  "-XX:TieredStopAtLevel=1",
                  "-Xss256k",
                  "-cp",
                  codeSource(),
                  SampleApp.class.getName(),
                  "--name",
                  pod.name(),
                  "--namespace",
                  pod.namespace()));
      if (app.httpPort() > 0) {
        argv.addAll(List.of("--http", Integer.toString(app.httpPort())));
      }
      if (app.tcpPort() > 0) {
        argv.addAll(List.of("--tcp", Integer.toString(app.tcpPort())));
      }
      return argv;
    }
    if (pod.app() instanceof AppSpec.Command cmd) {
      return cmd.argv();
    }
    throw new IllegalArgumentException("pod " + pod.name() + " has no app");
  }

  private static String javaBin() {
    return Path.of(System.getProperty("java.home"), "bin", "java").toString();
  }

  // The sample app needs only its own classes (plain JDK): give its JVM just the jar or directory
  // this class came from, not the launcher's 90 libraries.
  private static String codeSource() {
    try {
      return Path.of(SampleApp.class.getProtectionDomain().getCodeSource().getLocation().toURI())
          .toString();
    } catch (java.net.URISyntaxException | RuntimeException e) {
      return System.getProperty("java.class.path");
    }
  }

  private static void checkUnique(Manifest manifest, Topology topology, String prefix) {
    Set<String> netns = new HashSet<>();
    Set<String> ips = new HashSet<>();
    for (Topology.Node n : topology.nodes()) {
      if (!netns.add(Names.nodeNetns(prefix, n.name()))) {
        throw new IllegalArgumentException("node " + n.name() + " maps to a name already in use");
      }
    }
    for (PodSpec p : manifest.pods()) {
      if (!netns.add(Names.podNetns(prefix, p.namespace(), p.name()))) {
        throw new IllegalArgumentException("pod " + p.name() + " maps to a name already in use");
      }
      if (!ips.add(p.ip())) {
        throw new IllegalArgumentException("pod " + p.name() + " reuses IP " + p.ip());
      }
    }
  }

  private static String tail(Path log) {
    return Netns.tail(log, 20);
  }

  private void printSummary(List<NodePlan> plans, String prefix) {
    String nodeFmt = "%-12s %-24s %-16s %-15s %s%n";
    out.printf(nodeFmt, "NODE", "NETNS", "PODS", "UNDERLAY", "PROXY ADMIN");
    for (NodePlan p : plans) {
      out.printf(
          nodeFmt,
          p.node().name(),
          p.netns(),
          p.node().subnet(),
          plans.size() > 1 ? p.node().underlayIp() : "-",
          opts.proxy() ? p.admin() : "- (--no-proxy)");
    }
    String fmt = "%-16s %-12s %-28s %-15s %-18s %s%n";
    out.printf(fmt, "POD", "NODE", "NETNS", "IP", "APP", "ENROLLED");
    for (NodePlan n : plans) {
      for (PodSpec p : n.node().pods()) {
        String app = "-";
        if (p.app() instanceof AppSpec.SampleApp s) {
          app = "sample-app" + (s.httpPort() > 0 ? " :" + s.httpPort() : "");
        } else if (p.app() instanceof AppSpec.Command c) {
          app = c.argv().get(0);
        }
        out.printf(
            fmt,
            p.namespace().equals("default") ? p.name() : p.namespace() + "/" + p.name(),
            n.node().name(),
            Names.podNetns(prefix, p.namespace(), p.name()),
            p.ip(),
            app,
            opts.proxy() ? "yes (CNI)" : "no (--no-proxy)");
      }
    }
    out.println(
        "state: "
            + opts.runDir().resolve(StateFile.NAME)
            + "; tear down with `nodemesh local down --run-dir "
            + opts.runDir()
            + "`");
  }
}
