package dev.nodemesh.proxy;

import dev.nodemesh.bpf.iptables.PodInterception;
import dev.nodemesh.bpf.iptables.RedirectRules;
import dev.nodemesh.model.cni.PodRecords;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.accesslog.AccessLog;
import dev.nodemesh.proxy.admin.AdminServer;
import dev.nodemesh.proxy.admin.ConfigDump;
import dev.nodemesh.proxy.admin.Readiness;
import dev.nodemesh.proxy.agent.AgentServer;
import dev.nodemesh.proxy.agent.Enroller;
import dev.nodemesh.proxy.agent.NodeAgentService;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.agent.RecordReconciler;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.PolicyAuthorizer;
import dev.nodemesh.proxy.config.ConfigWatcher;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.identity.IdentityClient;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.identity.NodeToken;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.Interception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.intercept.InterceptionSelector;
import dev.nodemesh.proxy.intercept.IptablesInterception;
import dev.nodemesh.proxy.metrics.ProxyHealth;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.outbound.RoundRobinLoadBalancer;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.tunnel.Tunnel;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import dev.nodemesh.proxy.xds.XdsConfigSource;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.TlsChannelCredentials;
import io.micrometer.core.instrument.Counter;
import io.netty.channel.EventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node proxy: data-plane event loops, the config watcher, the node agent and the admin
 * endpoint. {@link #start} returns once the agent socket and the admin port accept connections.
 *
 * <p>Threads: {@code nodemesh-accept} (1) accepts on every in-pod listener, {@code nodemesh-io-N}
 * run the relays, {@code nodemesh-agent} enrols pods (and enters pod namespaces to make their
 * listeners), the agent's gRPC loop, {@code nodemesh-admin}, and for config either {@code
 * nodemesh-config-watcher} (YAML directory) or {@code nodemesh-xds} (control plane) plus the xDS
 * channel's gRPC threads, and {@code nodemesh-accesslog} when the access log is on.
 */
public final class NodeProxy implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeProxy.class);
  private static final int PROXY_MARK = RedirectRules.defaults().proxyMark();

  private final DataPlane plane;
  private final AutoCloseable configSource;
  private final Enroller enroller;
  private final ExecutorService agentThread;
  private final AgentServer agent;
  private final AdminServer admin;
  private final Readiness readiness;
  private final AtomicBoolean stoppedAccepting = new AtomicBoolean();
  private final AtomicBoolean draining = new AtomicBoolean();
  private final CountDownLatch closed = new CountDownLatch(1);
  private final AtomicBoolean closing = new AtomicBoolean();
  private @Nullable IdentityClient identity;

  private NodeProxy(
      DataPlane plane,
      AutoCloseable configSource,
      Enroller enroller,
      ExecutorService agentThread,
      AgentServer agent,
      AdminServer admin,
      Readiness readiness) {
    this.plane = plane;
    this.readiness = readiness;
    this.configSource = configSource;
    this.enroller = enroller;
    this.agentThread = agentThread;
    this.agent = agent;
    this.admin = admin;
  }

  /** Starts every part of the proxy and returns once the agent socket and admin port accept. */
  public static NodeProxy start(NodeProxyConfig config) throws Exception {
    return start(config, null, null);
  }

  /**
   * As {@link #start(NodeProxyConfig)}. HBONE (a 15008 listener in every enrolled pod, workloads on
   * other nodes reached through mTLS tunnels) is on when there are workload certificates: from
   * {@code identities} when given (tests), else from the CA of {@code config.identity()}. {@code
   * authorizer} decides every connection a pod here receives; null means the snapshot's policies
   * ({@link PolicyAuthorizer}).
   */
  public static NodeProxy start(
      NodeProxyConfig config,
      @Nullable IdentityProvider identities,
      @Nullable Authorizer authorizer)
      throws Exception {
    return start(config, identities, authorizer, TunnelSettings.defaults());
  }

  /** As above, with the HBONE connection sizes and limits (tests shorten the idle timeout). */
  public static NodeProxy start(
      NodeProxyConfig config,
      @Nullable IdentityProvider identities,
      @Nullable Authorizer authorizer,
      TunnelSettings tunnelSettings)
      throws Exception {
    Transport transport = Transport.of(config.transport());
    transport.logChoice();
    ProxyMetrics metrics = new ProxyMetrics(config.nodeName());
    // First, so a log file that cannot be opened fails the start before any thread exists.
    AccessLog accessLog =
        AccessLog.start(config.accessLog(), config.nodeName(), metrics.registry());
    SnapshotHolder snapshots = new SnapshotHolder();
    PodRegistry pods = new PodRegistry();
    EventLoopGroup accept =
        transport.newGroup(1, new DefaultThreadFactory("nodemesh-accept", true));
    EventLoopGroup workers =
        transport.newGroup(config.workerThreads(), new DefaultThreadFactory("nodemesh-io", true));
    Interception interception;
    try {
      interception = interception(config.interception());
    } catch (IOException | RuntimeException e) {
      closeQuietly(null, null, null, null, accept, workers);
      accessLog.close();
      throw e;
    }
    ChannelCredentials toControlPlane = controlPlaneCredentials(config.controlPlaneRoot());
    IdentityConfig plaintextCheck = config.identity();
    if (plaintextCheck != null && config.controlPlaneRoot() == null) {
      if (!plaintextCheck.plaintextToken()) {
        closeQuietly(null, null, null, null, accept, workers);
        interception.close();
        accessLog.close();
        throw new IllegalArgumentException(
            "refusing to send the node token to the control plane without TLS: give the control"
                + " plane's root (--ca-root), or --insecure-plaintext-token where plaintext is"
                + " meant (tests, a control plane on this host)");
      }
      log.warn(
          "INSECURE: the node token ({}) goes to the control plane over plaintext"
              + " (--insecure-plaintext-token)",
          plaintextCheck.tokenFile());
    }
    IdentityClient identity = null;
    if (identities == null && config.identity() != null) {
      try {
        identity =
            IdentityClient.start(
                config.identity(),
                config.nodeName(),
                config.xdsTarget(),
                toControlPlane,
                snapshots,
                metrics.registry());
      } catch (Exception | Error e) {
        closeQuietly(null, null, null, null, accept, workers);
        interception.close();
        throw e;
      }
      identities = identity.manager();
    }
    Authorizer policy = authorizer != null ? authorizer : new PolicyAuthorizer();
    Tunnel tunnel =
        identities == null
            ? null
            : new Tunnel(
                config.nodeName(),
                config.trustDomain(),
                identities,
                policy,
                tunnelSettings,
                metrics.registry());
    DataPlane plane =
        new DataPlane(
            transport,
            accept,
            workers,
            snapshots,
            pods,
            new RoundRobinLoadBalancer(),
            metrics,
            interception,
            PROXY_MARK,
            policy,
            config.trustDomain(),
            tunnel,
            accessLog,
            config.paths());
    Readiness readiness = new Readiness(snapshots, pods, config.nodeName());
    ProxyHealth health =
        ProxyHealth.bind(
            metrics,
            Map.of("accept", accept, "io", workers),
            () -> snapshots.current().version(),
            pods::size,
            readiness::ready);
    Counter rejected = health.configRejected();
    AutoCloseable watcher = null;
    ExecutorService agentThread = null;
    AgentServer agent = null;
    Enroller enroller = null;
    try {
      String xdsTarget = config.xdsTarget();
      Path configDir = config.configDir();
      if (xdsTarget != null) {
        // With identity on, the xDS stream carries the node's token too: a control plane with a
        // CA refuses a stream that does not prove the node it names.
        IdentityConfig id = config.identity();
        ChannelCredentials xdsCredentials =
            id == null
                ? toControlPlane
                : CompositeChannelCredentials.create(
                    toControlPlane, NodeToken.fromFile(id.tokenFile(), id.plaintextToken()));
        XdsConfigSource xds =
            XdsConfigSource.start(
                xdsTarget, xdsCredentials, config.nodeName(), snapshots, rejected);
        watcher = xds;
        health.bindXds(xds.client()::connected);
      } else {
        watcher =
            ConfigWatcher.start(
                Objects.requireNonNull(configDir, "configDir"),
                s -> {
                  ConfigSnapshot old = snapshots.swap(s);
                  health.configApplied();
                  log.info("config version {} -> {}: {}", old.version(), s.version(), s.describe());
                },
                e -> {
                  rejected.increment();
                  log.warn(
                      "config rejected, version {} stays: {}",
                      snapshots.current().version(),
                      e.getMessage());
                });
      }
      CertificateManager certificates = identity == null ? null : identity.manager();
      agentThread =
          Executors.newSingleThreadExecutor(new DefaultThreadFactory("nodemesh-agent", true));
      enroller = new Enroller(plane, interception);
      // Queued on the agent thread before the socket accepts, so every AddPod/DelPod runs after it.
      readiness.hold("re-enrolling the pods recorded in " + config.cniRunDir());
      Enroller reenrol = enroller;
      Future<?> unused =
          agentThread.submit(() -> reenrolRecordedPods(config.cniRunDir(), reenrol, readiness));
      agent = AgentServer.start(config.agentSocket(), new NodeAgentService(enroller, agentThread));
      readiness.supersededWhen(agent::superseded);
      AdminServer admin =
          AdminServer.start(
              config.adminAddress(),
              metrics::scrape,
              // Ready once a config is in force (at once from a directory, after the first
              // accepted update over xDS) and this node's pods are enrolled.
              readiness::notReadyReason,
              () ->
                  certificates == null
                      ? ConfigDump.json(snapshots.current())
                      : ConfigDump.json(snapshots.current(), certificates.held()));
      log.info(
          "node proxy for {} ready: agent {}, admin http://{}",
          config.nodeName(),
          config.agentSocket(),
          hostPort(admin.address()));
      NodeProxy proxy =
          new NodeProxy(plane, watcher, enroller, agentThread, agent, admin, readiness);
      proxy.identity = identity;
      return proxy;
    } catch (Exception | Error e) {
      closeQuietly(agent, enroller, agentThread, watcher, accept, workers);
      closeQuietly(identity);
      interception.close();
      accessLog.close();
      throw e;
    }
  }

  /** Restart without unmeshing: the pods the CNI plugin recorded are enrolled before /ready. */
  private static void reenrolRecordedPods(Path runDir, Enroller enroller, Readiness readiness) {
    try {
      log.info("pods from {}: {}", runDir, RecordReconciler.run(new PodRecords(runDir), enroller));
    } catch (IOException | RuntimeException e) {
      log.warn("re-enrolling the pods recorded in {} failed: {}", runDir, e.toString());
    } finally {
      readiness.release();
    }
  }

  private static Interception interception(InterceptionMode mode) throws IOException {
    Interception chosen =
        InterceptionSelector.forNode(
                m -> EbpfInterception.start(m, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK),
                m -> new IptablesInterception(new PodInterception(RedirectRules.defaults())))
            .select(mode);
    log.info(
        "interception: {} (--intercept={})", chosen, mode.kind().name().toLowerCase(Locale.ROOT));
    return chosen;
  }

  private static ChannelCredentials controlPlaneCredentials(@Nullable Path root)
      throws IOException {
    return root == null
        ? InsecureChannelCredentials.create()
        : TlsChannelCredentials.newBuilder().trustManager(root.toFile()).build();
  }

  private static void closeQuietly(@Nullable IdentityClient identity) {
    if (identity != null) {
      try {
        identity.close();
      } catch (Exception e) {
        log.warn("closing the certificate manager: {}", e.toString());
      }
    }
  }

  /**
   * Workload certificates for the tunnel ({@code --bootstrap-token-file} set), following the
   * config; null when this proxy holds none.
   */
  public @Nullable CertificateManager identity() {
    IdentityClient i = identity;
    return i == null ? null : i.manager();
  }

  private static String hostPort(InetSocketAddress a) {
    return a.getHostString() + ":" + a.getPort();
  }

  public DataPlane dataPlane() {
    return plane;
  }

  public InetSocketAddress adminAddress() {
    return admin.address();
  }

  /** Blocks until {@link #close()} is called (e.g. from a shutdown hook). */
  public void awaitClose() throws InterruptedException {
    closed.await();
  }

  /**
   * Stops gracefully, then {@link #close()}s: /ready answers 503 from now on, the agent socket and
   * every in-pod listener stop accepting (a new proxy beside this one, listening on the same ports
   * with SO_REUSEPORT, takes the new connections), every HBONE server connection gets a GOAWAY,
   * HTTP connections close once their requests are answered, and L4 relays run on until their peers
   * close them or {@code grace} is over, when they are cut. The SIGTERM hook calls this.
   *
   * @return how many connections the grace period cut
   */
  public int drain(Duration grace) throws InterruptedException {
    if (!draining.compareAndSet(false, true)) {
      throw new IllegalStateException("already draining");
    }
    readiness.draining();
    plane.downstreams().begin();
    log.info(
        "draining: {} connections open, grace period {} s",
        plane.downstreams().size(),
        grace.toSeconds());
    stopAccepting();
    Tunnel tunnel = plane.tunnel();
    if (tunnel != null) {
      tunnel.goAway().awaitUninterruptibly(5, TimeUnit.SECONDS);
    }
    int cut = plane.downstreams().drain(grace);
    log.info("drained: {} connections cut at the end of the grace period", cut);
    close();
    return cut;
  }

  /**
   * Stops listening everywhere. Pods' redirect rules stay, so their mesh traffic fails while the
   * proxy is down instead of bypassing it; a restarted proxy re-adopts them on AddPod/Snapshot.
   * Open connections are cut; {@link #drain} lets them finish first.
   */
  @Override
  public void close() {
    if (!closing.compareAndSet(false, true)) {
      return;
    }
    stopAccepting();
    admin.close();
    closeQuietly(null, null, null, configSource, plane.acceptGroup(), plane.workerGroup());
    closeQuietly(identity);
    plane.interception().close();
    // After the event loops: the lines of connections closed at shutdown are written too.
    plane.accessLog().close();
    closed.countDown();
  }

  /**
   * The agent socket and every pod's listeners close; connections stay, and so does the admin
   * endpoint (a draining proxy still answers /ready, with 503).
   */
  private void stopAccepting() {
    if (!stoppedAccepting.compareAndSet(false, true)) {
      return;
    }
    closeAgent(agent, enroller, agentThread);
  }

  private static void closeQuietly(
      @Nullable AgentServer agent,
      @Nullable Enroller enroller,
      @Nullable ExecutorService agentThread,
      @Nullable AutoCloseable watcher,
      EventLoopGroup accept,
      EventLoopGroup workers) {
    closeAgent(agent, enroller, agentThread);
    if (watcher != null) {
      try {
        watcher.close();
      } catch (Exception e) {
        log.warn("closing the config source: {}", e.toString());
      }
    }
    accept.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS).awaitUninterruptibly(5, TimeUnit.SECONDS);
  }

  private static void closeAgent(
      @Nullable AgentServer agent,
      @Nullable Enroller enroller,
      @Nullable ExecutorService agentThread) {
    try {
      if (agent != null) {
        agent.close();
      }
    } catch (Exception e) {
      log.warn("closing the agent socket: {}", e.toString());
    }
    if (agentThread != null && enroller != null) {
      Enroller e = enroller;
      try {
        agentThread.submit(e::close).get(30, TimeUnit.SECONDS);
      } catch (Exception ex) {
        log.warn("closing pod listeners: {}", ex.toString());
      }
    }
    if (agentThread != null) {
      agentThread.shutdownNow();
    }
  }
}
