package dev.nodemesh.scripts.cli;

import dev.nodemesh.proxy.IsolationSettings;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.StartupTimeline;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.l7.path.PathSettings;
import dev.nodemesh.proxy.outbound.ServiceRange;
import dev.nodemesh.proxy.state.SnapshotStore;
import dev.nodemesh.proxy.state.StateSettings;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.xds.XdsSettings;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.jspecify.annotations.Nullable;
import picocli.CommandLine;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code nodemesh proxy}: runs the node proxy in the foreground until SIGTERM/SIGINT. Only turns
 * flags into a {@link NodeProxyConfig}; everything else is the proxy's.
 */
@Command(
    name = "proxy",
    mixinStandardHelpOptions = true,
    description = "Run the node proxy in the foreground until SIGTERM or SIGINT.")
final class ProxyCommand implements Callable<Integer> {
  @Spec CommandSpec spec = CommandSpec.create();

  @Option(
      names = "--transport",
      paramLabel = "epoll|io_uring|nio",
      description = "Netty transport for every socket (default: ${DEFAULT-VALUE}).",
      defaultValue = "epoll")
  TransportKind transport = TransportKind.EPOLL;

  /** Where config comes from: exactly one of the two. */
  static final class ConfigSource {
    @Option(
        names = "--config-dir",
        required = true,
        paramLabel = "DIR",
        description = "Directory of Kubernetes-shaped YAML (Pods, Services) to serve.")
    @Nullable Path configDir;

    @Option(
        names = "--xds",
        required = true,
        paramLabel = "HOST:PORT",
        description = "Control plane to subscribe to over xDS instead of a config directory.")
    @Nullable String xds;
  }

  // Optional for --uninstall only: call() asks for one otherwise.
  @ArgGroup(multiplicity = "0..1")
  ConfigSource source = new ConfigSource();

  @Option(
      names = "--uninstall",
      description =
          "Do not run: detach and unpin what an earlier proxy left in --bpf-pin-dir (eBPF mode:"
              + " cgroup links, maps, each pod's inbound link) and, when --state-dir is given,"
              + " remove the config saved there, then exit. Only while no proxy uses them; no"
              + " pins to remove for --intercept=iptables.")
  boolean uninstall;

  @Option(
      names = "--agent-socket",
      paramLabel = "PATH",
      description = "Unix socket of the node agent (default: ${DEFAULT-VALUE}).",
      defaultValue = "/var/run/nodemesh/agent.sock")
  Path agentSocket = NodeProxyConfig.DEFAULT_AGENT_SOCKET;

  // No fixed default: "cni" beside --agent-socket, so a proxy with its own socket (local mode, one
  // per local node) never reads the host's records.
  @Option(
      names = "--cni-run-dir",
      paramLabel = "DIR",
      description =
          "The CNI plugin's run dir (its runDir); the pods recorded there are enrolled again on"
              + " start (default: cni beside --agent-socket, /var/run/nodemesh/cni).")
  @Nullable Path cniRunDir;

  // No fixed default, as --cni-run-dir: "state" beside --agent-socket, so local nodes keep apart.
  @Option(
      names = "--state-dir",
      paramLabel = "DIR",
      description =
          "Where the last config accepted over xDS is saved (atomically, checksummed) and loaded"
              + " from at start, before pods are enrolled (default: state beside --agent-socket,"
              + " /var/run/nodemesh/state; the DaemonSet mounts /var/lib/nodemesh/proxy).")
  @Nullable Path stateDir;

  // Repeatable and comma lists both, as dual-stack clusters give "v4,v6" (kube-apiserver's form).
  @Option(
      names = "--service-cidr",
      paramLabel = "CIDR[,CIDR]",
      description =
          "The cluster's service (VIP) range, IPv4 and/or IPv6; repeatable or a comma list. Before"
              + " the first config a pod's connection to it is refused rather than passed through,"
              + " and enrolment clears the pod's conntrack entries toward it that were made before"
              + " capture (default: none, every unknown address passes through).")
  List<String> serviceCidrs = new ArrayList<>();

  @Option(
      names = "--admin",
      paramLabel = "HOST:PORT",
      description = "Admin and metrics address (default: ${DEFAULT-VALUE}).",
      defaultValue = "127.0.0.1:15020",
      converter = HostPortConverter.class)
  InetSocketAddress admin = new InetSocketAddress("127.0.0.1", NodeProxyConfig.ADMIN_PORT);

  @Option(
      names = "--node-name",
      paramLabel = "NAME",
      description = "Node this proxy serves, used in metrics labels (default: the hostname).")
  // Looked up only when not given: resolving the host's own name may wait for DNS, and the
  // DaemonSet and local mode always pass one (issue 19, start to /ready).
  @Nullable String nodeName;

  @Option(
      names = "--workers",
      paramLabel = "N",
      description =
          "Data-plane event-loop threads, 0 = Netty's default, 2 x cores (default: ${DEFAULT-VALUE}).",
      defaultValue = "0")
  int workers;

  @Option(
      names = "--intercept",
      paramLabel = "iptables|ebpf|auto",
      description =
          "How pod traffic is captured: iptables rules in each pod; eBPF programs attached to"
              + " --bpf-cgroup (required: the start fails if this node cannot run them); or auto"
              + " (eBPF when the kernel probe and attach succeed, else iptables with one warning)"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "iptables")
  String intercept = "iptables";

  @Option(
      names = "--bpf-cgroup",
      paramLabel = "DIR",
      description = "cgroup v2 directory holding the pods, for --intercept=ebpf|auto.")
  Path bpfCgroup = InterceptionMode.DEFAULT_CGROUP;

  @Option(
      names = "--bpf-pin-dir",
      paramLabel = "DIR",
      description = "Directory on a bpffs for pinned maps and links (default: ${DEFAULT-VALUE}).",
      defaultValue = "/sys/fs/bpf/nodemesh")
  Path bpfPinDir = InterceptionMode.DEFAULT_PIN_DIR;

  @Option(
      names = "--ebpf-sk-msg",
      description =
          "eBPF mode only, experimental: pass bytes between a pod's socket and the proxy's in-pod"
              + " outbound listener with sk_msg + SOCKHASH instead of loopback TCP (needs the"
              + " proxy's listeners in --bpf-cgroup; see bpf/README.md). Off by default.")
  boolean ebpfSkMsg;

  @Option(
      names = "--ca",
      paramLabel = "HOST:PORT",
      description = "The CA to get workload certificates from (default: the --xds target).")
  @Nullable String ca;

  @Option(
      names = "--ca-root",
      paramLabel = "FILE",
      description =
          "PEM root the control plane's TLS certificate must chain to: xDS and the CA over TLS."
              + " Without it both are plaintext.")
  @Nullable Path caRoot;

  @Option(
      names = "--bootstrap-token-file",
      paramLabel = "FILE",
      description =
          "This node's token for the CA (local bootstrap token, or the service-account token on"
              + " Kubernetes); re-read on each request. Without it the proxy holds no workload"
              + " certificates.")
  @Nullable Path tokenFile;

  @Option(
      names = "--insecure-plaintext-token",
      description =
          "Send the node token to the control plane even without TLS (no --ca-root). Only for"
              + " tests or a control plane on this host: anyone on the path can read the token."
              + " Without it such a start is refused.")
  boolean plaintextToken;

  @Option(
      names = "--trust-domain",
      paramLabel = "DOMAIN",
      description =
          "SPIFFE trust domain: pods here are spiffe://DOMAIN/ns/NS/sa/SA, as policies name them"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = NodeProxyConfig.DEFAULT_TRUST_DOMAIN)
  String trustDomain = NodeProxyConfig.DEFAULT_TRUST_DOMAIN;

  @Option(
      names = "--initial-fetch-timeout",
      paramLabel = "DURATION",
      description =
          "How long the first config over xDS waits for every resource kind before the kinds"
              + " that arrived are applied with the missing ones empty (logged and counted; an"
              + " older control plane may not serve a kind), as Envoy's initial_fetch_timeout;"
              + " 0s = wait for ever (default: ${DEFAULT-VALUE}).",
      defaultValue = "15s",
      converter = ControlCommand.DurationConverter.class)
  Duration initialFetchTimeout = XdsSettings.DEFAULT_INITIAL_FETCH_TIMEOUT;

  @Option(
      names = "--cert-ttl",
      paramLabel = "DURATION",
      description =
          "Workload certificate lifetime to ask the CA for, e.g. 2m; 0 = the CA's default"
              + " (default: ${DEFAULT-VALUE}).",
      defaultValue = "0s",
      converter = ControlCommand.DurationConverter.class)
  Duration certTtl = Duration.ZERO;

  @Option(
      names = "--access-log",
      paramLabel = "off|stdout|FILE",
      description =
          "One JSON line per connection, written off the event loops (default: ${DEFAULT-VALUE}).",
      defaultValue = "off")
  String accessLog = "off";

  @Option(
      names = "--access-log-sample",
      paramLabel = "0..1",
      description = "Fraction of connections the access log records (default: ${DEFAULT-VALUE}).",
      defaultValue = "1.0")
  double accessLogSample = 1.0;

  @Option(
      names = "--path-merge-slashes",
      paramLabel = "true|false",
      arity = "1",
      description =
          "L7: merge repeated slashes in request paths (//admin is /admin) before routing and"
              + " policy see them; dot segments are always removed (default: ${DEFAULT-VALUE}).",
      defaultValue = "true")
  boolean pathMergeSlashes = true;

  @Option(
      names = "--path-escaped-slashes",
      paramLabel = "reject|keep|unescape",
      description =
          "L7: what %%2F and %%5C in a request path do: answer 400, stay inside their segment, or"
              + " become / (default: ${DEFAULT-VALUE}).",
      defaultValue = "reject")
  String pathEscapedSlashes = "reject";

  @Option(
      names = "--drain-grace",
      paramLabel = "DURATION",
      description =
          "On SIGTERM, how long open L4 connections may run on before they are cut, e.g. 30s"
              + " (default: ${DEFAULT-VALUE}); HTTP connections close once answered.",
      defaultValue = "30s",
      converter = DrainGraceConverter.class)
  Duration drainGrace = Duration.ofSeconds(30);

  // Isolation (issue 16): per-pod connection budgets and event-loop liveness.
  @Option(
      names = "--max-connections-per-pod",
      paramLabel = "N",
      description =
          "Concurrent downstream connections per enrolled pod and direction (out of it, into it);"
              + " past it a new connection is reset and counted. 0 derives it from the open-file"
              + " limit: (limit - 1024) / 16, at least 64 (default: ${DEFAULT-VALUE}).",
      defaultValue = "0")
  int maxConnectionsPerPod;

  @Option(
      names = "--max-upstream-connections-per-pod",
      paramLabel = "N",
      description =
          "Upstream sockets the proxy may hold open for one pod's connections of one direction"
              + " (relays, L7 pools and mirrors, HBONE); past it the dial fails at once (L4: reset,"
              + " L7: 503) and is counted. 0: the same as --max-connections-per-pod (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "0")
  int maxUpstreamConnectionsPerPod;

  @Option(
      names = "--loop-lag-unhealthy",
      paramLabel = "DURATION",
      description =
          "/healthz answers 503 while an event loop's probe has waited this long (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "5s",
      converter = DrainGraceConverter.class)
  Duration loopLagUnhealthy = Duration.ofSeconds(5);

  @Option(
      names = "--loop-stall-fatal",
      paramLabel = "DURATION",
      description =
          "The proxy exits (status 70, to be restarted) when an event loop's probe has waited this"
              + " long; 0 never (default: ${DEFAULT-VALUE}).",
      defaultValue = "30s",
      converter = DrainGraceConverter.class)
  Duration loopStallFatal = Duration.ofSeconds(30);

  // Connection timeouts (issue 16): each fires only on a connection idle in its own sense.
  @Option(
      names = "--http-request-header-timeout",
      paramLabel = "DURATION",
      description =
          "L7: close a connection whose request head is not complete this long after its first"
              + " byte (slowloris) (default: ${DEFAULT-VALUE}).",
      defaultValue = "10s",
      converter = ControlCommand.DurationConverter.class)
  Duration httpRequestHeaderTimeout = Duration.ofSeconds(10);

  @Option(
      names = "--http-idle-timeout",
      paramLabel = "DURATION",
      description =
          "L7: close a keep-alive connection with no request in flight (h2c: no stream open) this"
              + " long (default: ${DEFAULT-VALUE}).",
      defaultValue = "10m",
      converter = ControlCommand.DurationConverter.class)
  Duration httpIdleTimeout = Duration.ofMinutes(10);

  @Option(
      names = "--tcp-idle-timeout",
      paramLabel = "DURATION",
      description =
          "L4: close a relay with no byte either way this long; 0s turns it off (default:"
              + " ${DEFAULT-VALUE}, Envoy's TCP proxy default). A Service's TrafficPolicy"
              + " spec.tcpIdleTimeout overrides it for connections to that Service.",
      defaultValue = "1h",
      converter = ControlCommand.DurationConverter.class)
  Duration tcpIdleTimeout = Duration.ofHours(1);

  @Option(
      names = "--tunnel-idle-timeout",
      paramLabel = "DURATION",
      description =
          "HBONE: the client closes a tunnel connection with no stream this long, the server"
              + " after twice it (default: ${DEFAULT-VALUE}).",
      defaultValue = "60s",
      converter = ControlCommand.DurationConverter.class)
  Duration tunnelIdleTimeout = Duration.ofSeconds(60);

  @Option(
      names = "--tunnel-handshake-timeout",
      paramLabel = "DURATION",
      description =
          "HBONE: abandon a TLS handshake not finished in this, both sides (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "10s",
      converter = ControlCommand.DurationConverter.class)
  Duration tunnelHandshakeTimeout = Duration.ofSeconds(10);

  @Option(
      names = "--http-half-close-timeout",
      paramLabel = "DURATION",
      description =
          "L7 HTTP/1.1: a client that sent its FIN while a request still waits for the start of"
              + " its response is taken as gone this long after the FIN (connection closed,"
              + " upstream request cancelled); 0s: at the FIN, as Envoy, nginx and Go do (default:"
              + " ${DEFAULT-VALUE}).",
      defaultValue = "5s",
      converter = ControlCommand.DurationConverter.class)
  Duration httpHalfCloseTimeout = Duration.ofSeconds(5);

  /** {@code 30s}, {@code 500ms}, {@code 2m} or an ISO-8601 duration; never negative. */
  static final class DrainGraceConverter implements CommandLine.ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      String v = value.trim().toLowerCase(java.util.Locale.ROOT);
      Duration d;
      try {
        if (v.startsWith("p")) {
          d = Duration.parse(value.trim());
        } else if (v.endsWith("ms")) {
          d = Duration.ofMillis(Long.parseLong(v.substring(0, v.length() - 2)));
        } else if (v.endsWith("s")) {
          d = Duration.ofSeconds(Long.parseLong(v.substring(0, v.length() - 1)));
        } else if (v.endsWith("m")) {
          d = Duration.ofMinutes(Long.parseLong(v.substring(0, v.length() - 1)));
        } else {
          throw new IllegalArgumentException("no unit");
        }
      } catch (RuntimeException e) {
        throw new CommandLine.TypeConversionException("not a duration (30s, 500ms, 2m): " + value);
      }
      if (d.isNegative()) {
        throw new CommandLine.TypeConversionException("must not be negative: " + value);
      }
      return d;
    }
  }

  @Override
  public Integer call() throws Exception {
    // Netty's leak detector costs ~2 % of the proxy's CPU per L7 request: off unless a level is
    // asked for (the tests run it at paranoid).
    Transport.productionLeakDetection();
    if (!uninstall && source.configDir == null && source.xds == null) {
      throw new CommandLine.ParameterException(
          spec.commandLine(),
          "Missing required argument (specify one of these): (--config-dir=DIR | --xds=HOST:PORT)");
    }
    if (!(accessLogSample >= 0 && accessLogSample <= 1)) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--access-log-sample must be in 0..1, got " + accessLogSample);
    }
    if (tokenFile == null && ca != null) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--ca needs --bootstrap-token-file");
    }
    if (tokenFile != null && ca == null && source.xds == null) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--bootstrap-token-file needs --ca or --xds");
    }
    IdentityConfig identity =
        tokenFile == null
            ? null
            : new IdentityConfig(ca, tokenFile, trustDomain, certTtl, plaintextToken);
    if (workers < 0) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--workers must be >= 0, got " + workers);
    }
    InterceptionMode interception =
        switch (intercept) {
          case "iptables" -> InterceptionMode.iptables();
          case "ebpf" -> InterceptionMode.ebpf(bpfCgroup, bpfPinDir);
          case "auto" -> InterceptionMode.auto(bpfCgroup, bpfPinDir);
          default ->
              throw new CommandLine.ParameterException(
                  spec.commandLine(),
                  "--intercept must be iptables, ebpf or auto, got " + intercept);
        };
    if (ebpfSkMsg && interception.kind() == InterceptionMode.Kind.IPTABLES) {
      throw new CommandLine.ParameterException(
          spec.commandLine(), "--ebpf-sk-msg needs --intercept=ebpf or auto");
    }
    interception = interception.withSkMsg(ebpfSkMsg);
    if (uninstall) {
      System.err.println("nodemesh proxy --uninstall: " + EbpfInterception.uninstall(interception));
      // Only an explicit --state-dir: the default one beside the agent socket is local mode's,
      // whose run dir `local down` removes whole.
      if (stateDir != null) {
        try {
          System.err.println(
              "nodemesh proxy --uninstall: removed "
                  + new SnapshotStore(stateDir, Clock.systemUTC()).remove()
                  + " from "
                  + stateDir);
        } catch (IOException e) {
          System.err.println(
              "nodemesh proxy --uninstall: cannot remove the saved config in "
                  + stateDir
                  + ": "
                  + e);
          return 1;
        }
      }
      return 0;
    }
    PathSettings.EscapedSlashes escapedSlashes;
    try {
      escapedSlashes = PathSettings.EscapedSlashes.parse(pathEscapedSlashes);
    } catch (IllegalArgumentException e) {
      throw new CommandLine.ParameterException(
          spec.commandLine(),
          "--path-escaped-slashes must be reject, keep or unescape, got " + pathEscapedSlashes);
    }
    NodeProxyConfig config;
    try {
      config =
          NodeProxyConfig.builder()
              .transport(transport)
              .configDir(source.configDir)
              .agentSocket(agentSocket)
              .adminAddress(admin)
              .nodeName(nodeName != null ? nodeName : hostname())
              .workerThreads(workers)
              .interception(interception)
              .xdsTarget(source.xds)
              .trustDomain(trustDomain)
              .identity(caRoot, identity)
              .cniRunDir(cniRunDir)
              .accessLog(AccessLogSettings.parse(accessLog, accessLogSample))
              .paths(new PathSettings(pathMergeSlashes, escapedSlashes))
              .isolation(
                  new IsolationSettings(
                      maxConnectionsPerPod,
                      loopLagUnhealthy,
                      loopStallFatal,
                      maxUpstreamConnectionsPerPod))
              .state(stateDir != null ? new StateSettings(stateDir) : null)
              .serviceRange(ServiceRange.parse(serviceCidrs))
              .xds(new XdsSettings(initialFetchTimeout))
              .timeouts(
                  new ConnectionTimeouts(
                      httpRequestHeaderTimeout,
                      httpIdleTimeout,
                      tcpIdleTimeout,
                      tunnelIdleTimeout,
                      tunnelHandshakeTimeout,
                      httpHalfCloseTimeout))
              .build();
    } catch (IllegalArgumentException e) {
      throw new CommandLine.ParameterException(spec.commandLine(), e.getMessage());
    }
    StartupTimeline.PROCESS.mark("flags");
    NodeProxy proxy;
    try {
      proxy = NodeProxy.start(config);
    } catch (UnsupportedOperationException e) {
      System.err.println("nodemesh proxy: the node proxy cannot start yet: " + e.getMessage());
      return 1;
    }
    Duration grace = drainGrace;
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    proxy.drain(grace);
                  } catch (InterruptedException | RuntimeException e) {
                    System.err.println("nodemesh proxy: drain failed: " + e);
                    proxy.close();
                  }
                  // A JVM stopped by SIGTERM exits with 143 even after a clean drain; a finished
                  // drain is a normal stop (the orchestrator would report 143 as a failure).
                  System.out.flush();
                  System.err.flush();
                  Runtime.getRuntime().halt(0);
                },
                "nodemesh-shutdown"));
    proxy.awaitClose();
    return 0;
  }

  private static String hostname() {
    try {
      return InetAddress.getLocalHost().getHostName();
    } catch (UnknownHostException e) {
      // A host whose own name does not resolve still has a name for metrics labels.
      String env = System.getenv("HOSTNAME");
      return env == null || env.isBlank() ? "localhost" : env;
    }
  }

  /** {@code host:port} → address; a bad value is a usage error (exit 2). */
  static final class HostPortConverter implements CommandLine.ITypeConverter<InetSocketAddress> {
    @Override
    public InetSocketAddress convert(String value) {
      int colon = value.lastIndexOf(':');
      if (colon <= 0 || colon == value.length() - 1) {
        throw new CommandLine.TypeConversionException("expected HOST:PORT, got '" + value + "'");
      }
      String host = value.substring(0, colon);
      if (host.startsWith("[") && host.endsWith("]")) {
        host = host.substring(1, host.length() - 1);
      }
      int port;
      try {
        port = Integer.parseInt(value.substring(colon + 1));
      } catch (NumberFormatException e) {
        throw new CommandLine.TypeConversionException("bad port in '" + value + "'");
      }
      if (port < 0 || port > 65535) {
        throw new CommandLine.TypeConversionException("port out of range in '" + value + "'");
      }
      return new InetSocketAddress(host, port);
    }
  }
}
