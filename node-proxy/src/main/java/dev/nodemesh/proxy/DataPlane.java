package dev.nodemesh.proxy;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.AccessLog;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.authz.Admissions;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.PolicyAuthorizer;
import dev.nodemesh.proxy.budget.FdLimit;
import dev.nodemesh.proxy.budget.PodBudgets;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.drain.Downstreams;
import dev.nodemesh.proxy.intercept.Interception;
import dev.nodemesh.proxy.l7.path.PathSettings;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.outbound.LoadBalancer;
import dev.nodemesh.proxy.outbound.RoundRobinLoadBalancer;
import dev.nodemesh.proxy.outbound.ServiceRange;
import dev.nodemesh.proxy.transport.ConnectionTimeouts;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.tunnel.Tunnel;
import dev.nodemesh.proxy.tunnel.TunnelDialer;
import dev.nodemesh.proxy.upstream.DirectDialer;
import dev.nodemesh.proxy.upstream.Upstreams;
import io.netty.channel.EventLoopGroup;
import org.jspecify.annotations.Nullable;

/**
 * What every connection handler needs, wired once at start: the transport and its event loops, the
 * current config, the enrolled pods, the load balancer, the metrics, and the ways to upstreams (the
 * path decision, the dialers and the HTTP pools, instances owned here).
 *
 * @param interception how pod traffic reaches the listeners, and where it meant to go
 * @param proxyMark SO_MARK on every upstream socket so the pods' redirect rules let it through
 * @param authorizer the receiving side's policy check: inbound capture, same-node outbound, HBONE
 * @param trustDomain of the SPIFFE IDs this proxy gives its pods ({@code --trust-domain})
 * @param tunnel HBONE (15008 listeners, cross-node client pool); null when no identity provider is
 *     wired, and then every destination is reached directly as before
 * @param accessLog where each connection's access-log line goes ({@link AccessLog#off()}: nowhere)
 * @param upstreams how every path out of the proxy reaches its target, made from the transport, the
 *     proxy mark and the tunnel by the constructor without it
 * @param paths how the L7 path normalises request paths ({@code --path-merge-slashes}, {@code
 *     --path-escaped-slashes})
 * @param downstreams every connection accepted in a pod, for a drain
 * @param budgets each enrolled pod's connection budgets ({@code --max-connections-per-pod})
 * @param timeouts the request-header, idle and handshake timeouts of every connection ({@code
 *     --http-request-header-timeout}, {@code --http-idle-timeout}, {@code --tcp-idle-timeout}, …)
 * @param serviceRange the cluster's VIP range ({@code --service-cidr}): refused before the first
 *     config, and cleared from a pod's conntrack table at enrolment
 * @param admissions the open connections policy admitted, re-checked after each snapshot swap
 */
public record DataPlane(
    Transport transport,
    EventLoopGroup acceptGroup,
    EventLoopGroup workerGroup,
    SnapshotHolder snapshots,
    PodRegistry pods,
    LoadBalancer loadBalancer,
    ProxyMetrics metrics,
    Interception interception,
    int proxyMark,
    Authorizer authorizer,
    String trustDomain,
    @Nullable Tunnel tunnel,
    AccessLog accessLog,
    Upstreams upstreams,
    PathSettings paths,
    Downstreams downstreams,
    PodBudgets budgets,
    ConnectionTimeouts timeouts,
    ServiceRange serviceRange,
    Admissions admissions) {

  /**
   * A builder for the data plane over these event loops, config, pods, metrics and interception,
   * with the defaults: round-robin balancing, policy from the snapshot, the default trust domain,
   * no HBONE tunnel, no access log, the default path normalisation, per-pod budgets of the default
   * size for this process's open-file limit and the default connection timeouts. The {@link
   * Upstreams}, the tracked {@link Downstreams}, the {@link PodBudgets} and the {@link Admissions}
   * (listening to {@code snapshots}) are made by {@link Builder#build}.
   */
  public static Builder builder(
      Transport transport,
      EventLoopGroup acceptGroup,
      EventLoopGroup workerGroup,
      SnapshotHolder snapshots,
      PodRegistry pods,
      ProxyMetrics metrics,
      Interception interception,
      int proxyMark) {
    return new Builder(
        transport, acceptGroup, workerGroup, snapshots, pods, metrics, interception, proxyMark);
  }

  /** The optional parts of a {@link DataPlane}; the required ones are given to {@link #builder}. */
  public static final class Builder {
    private final Transport transport;
    private final EventLoopGroup acceptGroup;
    private final EventLoopGroup workerGroup;
    private final SnapshotHolder snapshots;
    private final PodRegistry pods;
    private final ProxyMetrics metrics;
    private final Interception interception;
    private final int proxyMark;
    private LoadBalancer loadBalancer = new RoundRobinLoadBalancer();
    private Authorizer authorizer = new PolicyAuthorizer();
    private String trustDomain = NodeProxyConfig.DEFAULT_TRUST_DOMAIN;
    private @Nullable Tunnel tunnel;
    private AccessLog accessLog = AccessLog.off();
    private PathSettings paths = PathSettings.DEFAULT;
    private int connectionsPerPod = -1;
    private int upstreamConnectionsPerPod = -1;
    private ConnectionTimeouts timeouts = ConnectionTimeouts.DEFAULT;
    private ServiceRange serviceRange = ServiceRange.NONE;

    private Builder(
        Transport transport,
        EventLoopGroup acceptGroup,
        EventLoopGroup workerGroup,
        SnapshotHolder snapshots,
        PodRegistry pods,
        ProxyMetrics metrics,
        Interception interception,
        int proxyMark) {
      this.transport = transport;
      this.acceptGroup = acceptGroup;
      this.workerGroup = workerGroup;
      this.snapshots = snapshots;
      this.pods = pods;
      this.metrics = metrics;
      this.interception = interception;
      this.proxyMark = proxyMark;
    }

    public Builder loadBalancer(LoadBalancer balancer) {
      this.loadBalancer = balancer;
      return this;
    }

    public Builder authorizer(Authorizer a) {
      this.authorizer = a;
      return this;
    }

    public Builder trustDomain(String domain) {
      this.trustDomain = domain;
      return this;
    }

    /** HBONE: 15008 listeners and the cross-node client pool (null: every target is direct). */
    public Builder tunnel(@Nullable Tunnel t) {
      this.tunnel = t;
      return this;
    }

    public Builder accessLog(AccessLog log) {
      this.accessLog = log;
      return this;
    }

    public Builder paths(PathSettings settings) {
      this.paths = settings;
      return this;
    }

    /** Every pod's connection budget per direction ({@code --max-connections-per-pod}). */
    public Builder connectionsPerPod(int budget) {
      this.connectionsPerPod = budget;
      return this;
    }

    /**
     * Every pod's upstream-socket budget per direction ({@code
     * --max-upstream-connections-per-pod}); unset, the same as the connection budget.
     */
    public Builder upstreamConnectionsPerPod(int budget) {
      this.upstreamConnectionsPerPod = budget;
      return this;
    }

    public Builder timeouts(ConnectionTimeouts t) {
      this.timeouts = t;
      return this;
    }

    /** The cluster's VIP range ({@code --service-cidr}; default none). */
    public Builder serviceRange(ServiceRange range) {
      this.serviceRange = range;
      return this;
    }

    public DataPlane build() {
      int budget =
          connectionsPerPod >= 0 ? connectionsPerPod : FdLimit.defaultBudget(FdLimit.current());
      PodBudgets budgets =
          new PodBudgets(
              budget,
              upstreamConnectionsPerPod >= 0 ? upstreamConnectionsPerPod : budget,
              metrics.registry());
      return new DataPlane(
          transport,
          acceptGroup,
          workerGroup,
          snapshots,
          pods,
          loadBalancer,
          metrics,
          interception,
          proxyMark,
          authorizer,
          trustDomain,
          tunnel,
          accessLog,
          upstreams(transport, proxyMark, budgets, pods, trustDomain, tunnel, metrics),
          paths,
          new Downstreams(metrics.registry()),
          budgets,
          timeouts,
          serviceRange,
          new Admissions(snapshots, metrics));
    }
  }

  private static Upstreams upstreams(
      Transport transport,
      int proxyMark,
      PodBudgets budgets,
      PodRegistry pods,
      String trustDomain,
      @Nullable Tunnel tunnel,
      ProxyMetrics metrics) {
    DirectDialer direct = new DirectDialer(transport, proxyMark, budgets, metrics.registry());
    return tunnel == null
        ? new Upstreams("", trustDomain, pods::byIp, direct, null)
        : new Upstreams(
            tunnel.nodeName(),
            tunnel.trustDomain(),
            pods::byIp,
            direct,
            new TunnelDialer(tunnel, direct));
  }

  /**
   * Lets go of what the data plane holds for {@code pod}, which is no longer enrolled: its metric
   * series (those naming its workload as source or destination), its connection budgets and the
   * pooled upstream connections made in its namespace. Connections still open go on.
   */
  public void release(EnrolledPod pod) {
    metrics.release(pod.namespace(), pod.name());
    budgets.release(pod);
    upstreams.http().release(pod.netns());
  }

  /**
   * The {@code *_principal} label of a pod enrolled here: its identity from the config (the
   * certificate this proxy presents for it) when identity is on, else {@link
   * TrafficLabels#UNKNOWN}.
   */
  public String principalLabel(ConfigSnapshot snapshot, EnrolledPod pod) {
    return tunnel == null
        ? TrafficLabels.UNKNOWN
        : TrafficLabels.principal(SpiffeId.ofEnrolledPod(snapshot, pod, trustDomain));
  }

  /**
   * The {@code *_principal} label of a mesh workload: the identity it must prove (its namespace and
   * service account) when identity is on, else {@link TrafficLabels#UNKNOWN}.
   */
  public String principalLabel(@Nullable Workload workload) {
    return tunnel == null || workload == null
        ? TrafficLabels.UNKNOWN
        : SpiffeId.of(trustDomain, workload).toString();
  }
}
