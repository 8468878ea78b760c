package dev.nodemesh.proxy;

import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.l7.path.PathSettings;
import dev.nodemesh.proxy.outbound.ServiceRange;
import dev.nodemesh.proxy.state.StateSettings;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.xds.XdsSettings;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import org.jspecify.annotations.Nullable;

/**
 * Start-up settings of one node proxy. Built by the {@code nodemesh proxy} command and by tests
 * through {@link #builder()} (every setting has a default) or {@link #toBuilder()}.
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
 * @param serviceRange {@code --service-cidr}: the cluster's VIP range, refused before the first
 *     config and cleared from a pod's conntrack table at enrolment (default: none)
 * @param xds the xDS client's settings ({@link XdsSettings}: the initial fetch timeout)
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
    ConnectionTimeouts timeouts,
    ServiceRange serviceRange,
    XdsSettings xds) {

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
   * A builder with every setting at its default: epoll, the default agent socket, an ephemeral
   * loopback admin port, iptables interception, the default trust domain, no TLS to the control
   * plane, no workload certificates, the CNI run dir and the state dir beside the agent socket, no
   * access log, the default paths, budgets and timeouts. Set a node name and exactly one of {@link
   * Builder#configDir} and {@link Builder#xdsTarget}.
   */
  public static Builder builder() {
    return new Builder();
  }

  /** A builder holding these settings, to change some of them. */
  public Builder toBuilder() {
    Builder b = new Builder();
    b.transport = transport;
    b.configDir = configDir;
    b.agentSocket = agentSocket;
    b.adminAddress = adminAddress;
    b.nodeName = nodeName;
    b.workerThreads = workerThreads;
    b.interception = interception;
    b.xdsTarget = xdsTarget;
    b.trustDomain = trustDomain;
    b.controlPlaneRoot = controlPlaneRoot;
    b.identity = identity;
    b.cniRunDir = cniRunDir;
    b.accessLog = accessLog;
    b.paths = paths;
    b.isolation = isolation;
    b.state = state;
    b.timeouts = timeouts;
    b.serviceRange = serviceRange;
    b.xds = xds;
    return b;
  }

  /**
   * Collects the settings; {@link #build} checks them. The CNI run dir and the state dir, when not
   * set, follow the agent socket.
   */
  public static final class Builder {
    private TransportKind transport = TransportKind.EPOLL;
    private @Nullable Path configDir;
    private Path agentSocket = DEFAULT_AGENT_SOCKET;
    private InetSocketAddress adminAddress = new InetSocketAddress("127.0.0.1", 0);
    private @Nullable String nodeName;
    private int workerThreads;
    private InterceptionMode interception = InterceptionMode.iptables();
    private @Nullable String xdsTarget;
    private String trustDomain = DEFAULT_TRUST_DOMAIN;
    private @Nullable Path controlPlaneRoot;
    private @Nullable IdentityConfig identity;
    private @Nullable Path cniRunDir;
    private AccessLogSettings accessLog = AccessLogSettings.OFF;
    private PathSettings paths = PathSettings.DEFAULT;
    private IsolationSettings isolation = IsolationSettings.DEFAULT;
    private @Nullable StateSettings state;
    private ConnectionTimeouts timeouts = ConnectionTimeouts.DEFAULT;
    private ServiceRange serviceRange = ServiceRange.NONE;
    private XdsSettings xds = XdsSettings.DEFAULT;

    private Builder() {}

    public Builder transport(TransportKind kind) {
      this.transport = kind;
      return this;
    }

    /** Config from this YAML directory (clears any xDS target). */
    public Builder configDir(@Nullable Path dir) {
      this.configDir = dir;
      return this;
    }

    /** Config from the control plane at {@code host:port} (over xDS). */
    public Builder xdsTarget(@Nullable String target) {
      this.xdsTarget = target;
      return this;
    }

    public Builder agentSocket(Path socket) {
      this.agentSocket = socket;
      return this;
    }

    public Builder adminAddress(InetSocketAddress address) {
      this.adminAddress = address;
      return this;
    }

    public Builder nodeName(String name) {
      this.nodeName = name;
      return this;
    }

    public Builder workerThreads(int threads) {
      this.workerThreads = threads;
      return this;
    }

    public Builder interception(InterceptionMode mode) {
      this.interception = mode;
      return this;
    }

    public Builder trustDomain(String domain) {
      this.trustDomain = domain;
      return this;
    }

    /** TLS to the control plane (its root) and/or workload certificates from a CA. */
    public Builder identity(@Nullable Path controlPlaneRoot, @Nullable IdentityConfig identity) {
      this.controlPlaneRoot = controlPlaneRoot;
      this.identity = identity;
      return this;
    }

    /** The CNI run dir whose pod records are re-enrolled at start (null: beside the socket). */
    public Builder cniRunDir(@Nullable Path dir) {
      this.cniRunDir = dir;
      return this;
    }

    public Builder accessLog(AccessLogSettings settings) {
      this.accessLog = settings;
      return this;
    }

    public Builder paths(PathSettings settings) {
      this.paths = settings;
      return this;
    }

    public Builder isolation(IsolationSettings settings) {
      this.isolation = settings;
      return this;
    }

    /** Where the last accepted config is saved (null: {@code state} beside the agent socket). */
    public Builder state(@Nullable StateSettings settings) {
      this.state = settings;
      return this;
    }

    public Builder timeouts(ConnectionTimeouts t) {
      this.timeouts = t;
      return this;
    }

    /** The cluster's VIP range ({@code --service-cidr}). */
    public Builder serviceRange(ServiceRange range) {
      this.serviceRange = range;
      return this;
    }

    /** The xDS client's settings (the initial fetch timeout). */
    public Builder xds(XdsSettings settings) {
      this.xds = settings;
      return this;
    }

    /**
     * The settings.
     *
     * @throws IllegalArgumentException when they contradict each other (see the record)
     * @throws IllegalStateException when no node name is set
     */
    public NodeProxyConfig build() {
      if (nodeName == null) {
        throw new IllegalStateException("a node name is required");
      }
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
          cniRunDir != null ? cniRunDir : defaultCniRunDir(agentSocket),
          accessLog,
          paths,
          isolation,
          state != null ? state : StateSettings.besideAgentSocket(agentSocket),
          timeouts,
          serviceRange,
          xds);
    }
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
