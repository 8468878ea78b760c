package dev.nodemesh.proxy;

import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.l7.path.PathSettings;
import dev.nodemesh.proxy.state.StateSettings;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Start-up settings of one node proxy. Built by the {@code nodemesh proxy} command and by tests:
 * the short constructors give the defaults, the {@code with*} methods change one concern.
 *
 * @param transport which Netty transport drives every socket (epoll by default on Linux)
 * @param configDir directory of Kubernetes-shaped YAML (Pods, Services) read at start and on
 *     change; the local option when there is no control plane. Exactly one of this and {@code
 *     xdsTarget} is set.
 * @param agentSocket path of the node agent's Unix socket
 * @param adminAddress where /metrics, /healthz and /ready are served (its own thread)
 * @param nodeName the node this proxy serves, used in metrics labels
 * @param workerThreads data-plane event-loop threads (0 = Netty's default, 2 x cores)
 * @param interception iptables (default) or eBPF, and where eBPF attaches and pins
 * @param xdsTarget the control plane's gRPC target ({@code host:port}); config then comes over xDS
 * @param trustDomain the SPIFFE trust domain of this mesh ({@code --trust-domain}, default {@link
 *     #DEFAULT_TRUST_DOMAIN}): principals of pods on this node are {@code
 *     spiffe://<trustDomain>/ns/<ns>/sa/<sa>}
 * @param controlPlaneRoot PEM root(s) the control plane's TLS certificate must chain to; null keeps
 *     the xDS and CA channels plaintext
 * @param identity where workload certificates come from; null: this proxy holds none (and so opens
 *     no HBONE tunnel)
 * @param cniRunDir the CNI plugin's run dir: on start the proxy re-enrols the pods recorded there
 *     (the plugin's {@code runDir}, default {@code /var/run/nodemesh/cni}; by default the {@code
 *     cni} dir beside the agent socket, which is that path for the default socket)
 * @param accessLog {@code --access-log} and {@code --access-log-sample}
 * @param paths {@code --path-merge-slashes} and {@code --path-escaped-slashes}: how the L7 path
 *     normalises request paths before routing and policy read them
 * @param isolation per-pod connection budgets and event-loop liveness ({@link IsolationSettings})
 * @param state {@code --state-dir}: where the last accepted xDS config is saved and, at start,
 *     loaded from (default: {@code state} beside the agent socket)
 * @param timeouts the request-header, idle and handshake timeouts ({@link ConnectionTimeouts})
 */
public record NodeProxyConfig(
    TransportKind transport,
    @Nullable Path configDir,
    Path agentSocket,
    InetSocketAddress adminAddress,
    String nodeName,
    int workerThreads,
    InterceptionMode interception,
    @Nullable String xdsTarget,
    String trustDomain,
    @Nullable Path controlPlaneRoot,
    @Nullable IdentityConfig identity,
    Path cniRunDir,
    AccessLogSettings accessLog,
    PathSettings paths,
    IsolationSettings isolation,
    StateSettings state,
    ConnectionTimeouts timeouts) {

  public NodeProxyConfig {
    if ((configDir == null) == (xdsTarget == null)) {
      throw new IllegalArgumentException("exactly one of a config directory and an xDS target");
    }
    if (trustDomain.isEmpty() || trustDomain.contains("/")) {
      throw new IllegalArgumentException("trust domain must be non-empty without '/'");
    }
    if (identity != null && identity.caTarget() == null && xdsTarget == null) {
      throw new IllegalArgumentException("a CA target is needed without an xDS target");
    }
    if (identity != null && !identity.trustDomain().equals(trustDomain)) {
      throw new IllegalArgumentException("the identity's trust domain differs from the proxy's");
    }
  }

  /**
   * The settings with the default budgets and liveness, the state directory beside the agent socket
   * and the default connection timeouts.
   */
  public NodeProxyConfig(
      TransportKind transport,
      @Nullable Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads,
      InterceptionMode interception,
      @Nullable String xdsTarget,
      String trustDomain,
      @Nullable Path controlPlaneRoot,
      @Nullable IdentityConfig identity,
      Path cniRunDir,
      AccessLogSettings accessLog,
      PathSettings paths) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        IsolationSettings.DEFAULT,
        StateSettings.besideAgentSocket(agentSocket),
        ConnectionTimeouts.DEFAULT);
  }

  /** The settings with the default path normalisation ({@link PathSettings#DEFAULT}). */
  public NodeProxyConfig(
      TransportKind transport,
      @Nullable Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads,
      InterceptionMode interception,
      @Nullable String xdsTarget,
      String trustDomain,
      @Nullable Path controlPlaneRoot,
      @Nullable IdentityConfig identity,
      Path cniRunDir,
      AccessLogSettings accessLog) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        PathSettings.DEFAULT);
  }

  /**
   * The default trust domain, no TLS to the control plane, no workload certificates, the CNI run
   * dir beside the agent socket, no access log.
   */
  public NodeProxyConfig(
      TransportKind transport,
      @Nullable Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads,
      InterceptionMode interception,
      @Nullable String xdsTarget) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        DEFAULT_TRUST_DOMAIN,
        null,
        null,
        defaultCniRunDir(agentSocket),
        AccessLogSettings.OFF);
  }

  /** Config from a YAML directory, iptables interception: no control plane, the defaults. */
  public NodeProxyConfig(
      TransportKind transport,
      Path configDir,
      Path agentSocket,
      InetSocketAddress adminAddress,
      String nodeName,
      int workerThreads) {
    this(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        InterceptionMode.iptables(),
        null);
  }

  /** The same settings with another trust domain. */
  public NodeProxyConfig withTrustDomain(String domain) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        domain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        isolation,
        state,
        timeouts);
  }

  /** The same settings with TLS to the control plane and/or workload certificates from a CA. */
  public NodeProxyConfig withIdentity(
      @Nullable Path controlPlaneRoot, @Nullable IdentityConfig identity) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        isolation,
        state,
        timeouts);
  }

  /** The same settings re-enrolling the pods recorded in another CNI run dir. */
  public NodeProxyConfig withCniRunDir(Path dir) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        dir,
        accessLog,
        paths,
        isolation,
        state,
        timeouts);
  }

  /** The same settings with the access log going to {@code settings}. */
  public NodeProxyConfig withAccessLog(AccessLogSettings settings) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        settings,
        paths,
        isolation,
        state,
        timeouts);
  }

  /** The same settings with another path normalisation. */
  public NodeProxyConfig withPaths(PathSettings settings) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        settings,
        isolation,
        state,
        timeouts);
  }

  /** The same settings with other connection timeouts. */
  public NodeProxyConfig withTimeouts(ConnectionTimeouts t) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        isolation,
        state,
        t);
  }

  /** The same settings with other per-pod budgets and liveness limits. */
  public NodeProxyConfig withIsolation(IsolationSettings settings) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        settings,
        state,
        timeouts);
  }

  /** The same settings keeping the proxy's state (the saved config) in {@code settings}. */
  public NodeProxyConfig withState(StateSettings settings) {
    return new NodeProxyConfig(
        transport,
        configDir,
        agentSocket,
        adminAddress,
        nodeName,
        workerThreads,
        interception,
        xdsTarget,
        trustDomain,
        controlPlaneRoot,
        identity,
        cniRunDir,
        accessLog,
        paths,
        isolation,
        settings,
        timeouts);
  }

  /** {@code cni} beside the agent socket: {@code /var/run/nodemesh/cni} for the default socket. */
  public static Path defaultCniRunDir(Path agentSocket) {
    return dev.nodemesh.model.cni.PodRecords.defaultDir(agentSocket);
  }

  public static final Path DEFAULT_AGENT_SOCKET = Path.of("/var/run/nodemesh/agent.sock");
  public static final String DEFAULT_TRUST_DOMAIN = "cluster.local";
  public static final int OUTBOUND_PORT = 15001;
  public static final int INBOUND_PORT = 15006;
  public static final int HBONE_PORT = 15008;
  public static final int ADMIN_PORT = 15020;
}
