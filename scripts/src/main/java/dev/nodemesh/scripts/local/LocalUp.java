package dev.nodemesh.scripts.local;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.proxy.agent.AgentClient;
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
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * {@code nodemesh local up}: builds a node of pods on this machine. A "node" netns holds a bridge;
 * each pod is a netns with a veth {@code eth0} on that bridge, its /24 and a route for the service
 * CIDR only (never a default route, so service VIPs cannot leak to the real network); a hosts file
 * stands in for DNS; the node proxy runs as a child process and each pod is enrolled through the
 * node agent; pod apps run inside their netns.
 *
 * <p>Every object is journalled in {@link StateFile} before it is created. On any failure up rolls
 * back through {@link LocalDown}, and a crash is undone by running {@code down} later.
 *
 * <p>Limits: one node; IPv4 only; all pod IPs must share one /24 (the bridge is plain L2, nothing
 * routes between subnets); the root netns is never touched (the proxy process runs there, but all
 * links live in the namespaces created here).
 */
public final class LocalUp {
  /** Flags of {@code local up}. */
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
      List<String> proxyArgs) {
    public Options {
      proxyJvmOptions = List.copyOf(proxyJvmOptions);
      proxyArgs = List.copyOf(proxyArgs);
    }
  }

  private static final int POD_PREFIX_LEN = 24;

  /** The node proxy's JVM sizing unless overridden; see scripts/bench/README.md for the effect. */
  public static final List<String> PROXY_DEFAULT_JVM_OPTIONS =
      List.of("-XX:+UseParallelGC", "-Xms64m", "-Xmx64m");

  private final Options opts;
  private final PrintStream out;

  public LocalUp(Options opts, PrintStream out) {
    this.opts = opts;
    this.out = out;
  }

  /** Brings the node up, or rolls back and throws. */
  public void run() throws Exception {
    Manifest manifest = Manifest.read(opts.configDir());
    String prefix = Names.checkPrefix(opts.prefix());
    checkUnique(manifest, prefix);
    StateFile state = StateFile.create(opts.runDir(), prefix, opts.configDir(), opts.proxy());
    try {
      Map<String, String> enrolled = build(manifest, state, prefix);
      printSummary(manifest, prefix, enrolled);
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

  private Map<String, String> build(Manifest manifest, StateFile state, String prefix)
      throws Exception {
    String node = Names.nodeNetns(prefix);
    addNetns(state, node);
    String bridge = Names.bridge(prefix);
    state.add(Resource.link(bridge, node));
    Exec.ip(node, "link", "add", bridge, "type", "bridge");
    Exec.ip(node, "link", "set", bridge, "up");

    String hosts = HostsFile.render(manifest);
    for (PodSpec pod : manifest.pods()) {
      addPod(state, prefix, node, bridge, pod, hosts);
    }

    Map<String, String> enrolled = new LinkedHashMap<>();
    if (opts.proxy()) {
      startProxyAndEnrol(state, manifest, prefix, enrolled);
    }

    List<Started> apps = new ArrayList<>();
    for (PodSpec pod : manifest.pods()) {
      if (!(pod.app() instanceof AppSpec.None)) {
        String netns = Names.podNetns(prefix, pod.namespace(), pod.name());
        Path log = opts.runDir().resolve(pod.name() + ".log");
        Resource r = Daemons.start(state, "app:" + pod.name(), netns, appArgv(pod), log);
        apps.add(new Started(pod, netns, r, log));
      }
    }
    for (Started s : apps) {
      awaitApp(s);
    }
    return enrolled;
  }

  private record Started(PodSpec pod, String netns, Resource process, Path log) {}

  private static void addNetns(StateFile state, String name) throws IOException {
    state.add(Resource.netns(name));
    Exec.check("ip", "netns", "add", name);
    Exec.ip(name, "link", "set", "lo", "up");
  }

  private void addPod(
      StateFile state, String prefix, String node, String bridge, PodSpec pod, String hosts)
      throws IOException {
    String netns = Names.podNetns(prefix, pod.namespace(), pod.name());
    addNetns(state, netns);
    String veth = Names.podVeth(prefix, pod.namespace(), pod.name());
    state.add(Resource.link(veth, node));
    // Both ends are created directly in their namespaces, so nothing ever appears in the root
    // netns (where br_netfilter and docker-style rules would see it).
    Exec.ip(node, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", netns);
    Exec.ip(node, "link", "set", veth, "master", bridge, "up");
    Exec.ip(netns, "addr", "add", pod.ip() + "/" + POD_PREFIX_LEN, "dev", "eth0");
    Exec.ip(netns, "link", "set", "eth0", "up");
    Exec.ip(netns, "route", "add", opts.serviceCidr(), "dev", "eth0");

    Path dir = Path.of("/etc/netns", netns);
    state.add(Resource.dir(dir));
    Files.createDirectories(dir);
    Files.writeString(dir.resolve("hosts"), hosts, StandardCharsets.UTF_8);
  }

  private void startProxyAndEnrol(
      StateFile state, Manifest manifest, String prefix, Map<String, String> enrolled)
      throws Exception {
    Path socket = opts.runDir().resolve("agent.sock");
    Path log = opts.runDir().resolve("proxy.log");
    // The control plane serves the YAML directory over xDS; the proxy gets everything from it.
    int xdsPort = freeLoopbackPort();
    int controlAdminPort = freeLoopbackPort();
    Path controlLog = opts.runDir().resolve("control.log");
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
                "127.0.0.1:" + controlAdminPort),
            controlLog);
    awaitHttpOk(URI.create("http://127.0.0.1:" + controlAdminPort + "/ready"), control, controlLog);
    List<String> proxyArgs =
        new ArrayList<>(
            List.of(
                "proxy",
                "--xds",
                "127.0.0.1:" + xdsPort,
                "--agent-socket",
                socket.toString(),
                "--admin",
                opts.adminAddress(),
                "--node-name",
                opts.nodeName()));
    proxyArgs.addAll(opts.proxyArgs());
    // A small fixed heap: L4 relaying keeps its buffers off-heap, and a small young generation
    // keeps collection pauses (the proxy's p99) short. --proxy-jvm-opt comes later and wins.
    List<String> jvm = new ArrayList<>(PROXY_DEFAULT_JVM_OPTIONS);
    jvm.addAll(opts.proxyJvmOptions());
    List<String> argv = javaCommand(jvm, proxyArgs.toArray(String[]::new));
    Resource proxy = Daemons.start(state, "proxy", null, argv, log);
    try (AgentClient agent = new AgentClient(socket, Duration.ofSeconds(10))) {
      awaitAgent(agent, socket, proxy, log);
      for (PodSpec pod : manifest.pods()) {
        String netns = Names.podNetns(prefix, pod.namespace(), pod.name());
        Pod request =
            Pod.newBuilder()
                .setUid(pod.uid())
                .setName(pod.name())
                .setNamespace(pod.namespace())
                .setNetnsPath(Netns.path(netns).toString())
                .addIps(pod.ip())
                .build();
        agent.addPod(request);
        enrolled.put(pod.name(), "yes");
      }
    }
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

  private static void checkUnique(Manifest manifest, String prefix) {
    Set<String> netns = new HashSet<>();
    Set<String> veths = new HashSet<>();
    Set<String> ips = new HashSet<>();
    for (PodSpec p : manifest.pods()) {
      if (!netns.add(Names.podNetns(prefix, p.namespace(), p.name()))
          || !veths.add(Names.podVeth(prefix, p.namespace(), p.name()))) {
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

  private void printSummary(Manifest manifest, String prefix, Map<String, String> enrolled) {
    String fmt = "%-16s %-28s %-15s %-18s %s%n";
    out.printf(fmt, "POD", "NETNS", "IP", "APP", "ENROLLED");
    for (PodSpec p : manifest.pods()) {
      String app = "-";
      if (p.app() instanceof AppSpec.SampleApp s) {
        app = "sample-app" + (s.httpPort() > 0 ? " :" + s.httpPort() : "");
      } else if (p.app() instanceof AppSpec.Command c) {
        app = c.argv().get(0);
      }
      out.printf(
          fmt,
          p.namespace().equals("default") ? p.name() : p.namespace() + "/" + p.name(),
          Names.podNetns(prefix, p.namespace(), p.name()),
          p.ip(),
          app,
          opts.proxy() ? enrolled.getOrDefault(p.name(), "no") : "no (--no-proxy)");
    }
    out.println(
        "state: "
            + opts.runDir().resolve(StateFile.NAME)
            + "; tear down with `nodemesh local down --run-dir "
            + opts.runDir()
            + "`");
  }
}
