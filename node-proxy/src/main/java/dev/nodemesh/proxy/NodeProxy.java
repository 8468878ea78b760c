package dev.nodemesh.proxy;

import dev.nodemesh.bpf.iptables.CallerAddressRouting;
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
import dev.nodemesh.proxy.authz.FailClosedAuthorizer;
import dev.nodemesh.proxy.authz.PolicyAuthorizer;
import dev.nodemesh.proxy.budget.FdLimit;
import dev.nodemesh.proxy.config.ConfigWatcher;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.identity.DeferredIdentityProvider;
import dev.nodemesh.proxy.identity.IdentityClient;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.identity.NodeToken;
import dev.nodemesh.proxy.intercept.EbpfInterception;
import dev.nodemesh.proxy.intercept.Interception;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.intercept.InterceptionSelector;
import dev.nodemesh.proxy.intercept.IptablesInterception;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.liveness.LoopWatchdog;
import dev.nodemesh.proxy.metrics.ProxyHealth;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.state.SavedConfig;
import dev.nodemesh.proxy.state.SnapshotStore;
import dev.nodemesh.proxy.transport.Transport;
import dev.nodemesh.proxy.tunnel.Tunnel;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import dev.nodemesh.proxy.xds.EnrolmentReporter;
import dev.nodemesh.proxy.xds.XdsClient;
import dev.nodemesh.proxy.xds.XdsConfigSource;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
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
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running node proxy: data-plane event loops, the config watcher, the node agent and the admin
 * endpoint. {@link #start} returns once the agent socket and the admin port accept connections.
 *
 * <p>Threads: {@code nodemesh-accept} (1) accepts on every in-pod listener, {@code nodemesh-io-N}
 * run the relays (an Error on either ends the process, {@code nodemesh-watchdog} probes both),
 * {@code nodemesh-agent} enrols pods (and enters pod namespaces to make their listeners), the
 * agent's gRPC loop, {@code nodemesh-admin}, and for config either {@code nodemesh-config-watcher}
 * (YAML directory) or {@code nodemesh-xds} (control plane) plus the xDS channel's gRPC threads, and
 * {@code nodemesh-accesslog} when the access log is on.
 *
 * <p>Start order (issue 19, start to {@code /ready}): event loops, interception and the data plane;
 * then the re-enrolment of the CNI plugin's recorded pods is queued on the agent thread, and while
 * it runs (mostly waiting for iptables-restore) this thread starts the admin port ({@code /ready}
 * 503 meanwhile), the CA client (the tunnel's certificate requests wait for it through a {@link
 * DeferredIdentityProvider}), the config source and the agent socket. Readiness is released when
 * both are done, so {@code /ready} means what it did when the start was one sequence.
 */
public final class NodeProxy implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(NodeProxy.class);
  private static final int PROXY_MARK = RedirectRules.defaults().proxyMark();
  private static final Duration WATCHDOG_PERIOD = Duration.ofSeconds(1);

  private final DataPlane plane;
  private final AutoCloseable configSource;
  private final Enroller enroller;
  private final ExecutorService agentThread;
  private final AgentServer agent;
  private final AdminServer admin;
  private final Readiness readiness;
  private final LoopWatchdog watchdog;
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
      Readiness readiness,
      LoopWatchdog watchdog) {
    this.plane = plane;
    this.watchdog = watchdog;
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
    return start(
        config,
        identities,
        authorizer,
        TunnelSettings.defaults()
            .withTimeouts(config.timeouts().tunnelIdle(), config.timeouts().tlsHandshake()));
  }

  /** As above, with the HBONE connection sizes and limits (tests shorten the idle timeout). */
  public static NodeProxy start(
      NodeProxyConfig config,
      @Nullable IdentityProvider identities,
      @Nullable Authorizer authorizer,
      TunnelSettings tunnelSettings)
      throws Exception {
    StartupTimeline timeline = StartupTimeline.PROCESS;
    timeline.mark("proxy");
    Transport transport = Transport.of(config.transport());
    transport.logChoice();
    ProxyMetrics metrics = new ProxyMetrics(config.nodeName());
    // First, so a log file that cannot be opened fails the start before any thread exists.
    AccessLog accessLog =
        AccessLog.start(config.accessLog(), config.nodeName(), metrics.registry());
    // The node's last known good config, in force before any pod is enrolled (xDS mode only: a
    // config directory is read at once below). Without one, nothing is in force and
    // FailClosedAuthorizer refuses every connection to a pod here until the first config arrives.
    SnapshotStore store = new SnapshotStore(config.state().dir(), Clock.systemUTC());
    Saved saved = config.xdsTarget() == null ? null : loadSaved(store, config.nodeName());
    SnapshotHolder snapshots =
        new SnapshotHolder(saved == null ? ConfigSnapshot.empty() : saved.snapshot());
    PodRegistry pods = new PodRegistry();
    IsolationSettings isolation = config.isolation();
    long nofile = FdLimit.raiseToHard();
    int perPod =
        isolation.maxConnectionsPerPod() > 0
            ? isolation.maxConnectionsPerPod()
            : FdLimit.defaultBudget(nofile);
    int upstreamPerPod =
        isolation.maxUpstreamConnectionsPerPod() > 0
            ? isolation.maxUpstreamConnectionsPerPod()
            : perPod;
    log.info(
        "connection budget: {} per pod and direction, upstream sockets {} (open-file limit {})",
        perPod,
        upstreamPerPod,
        nofile);
    // An Error that escapes a data-plane thread ends the process (liveness.FatalErrors).
    EventLoopGroup accept = transport.newGroup(1, FatalErrors.threads("nodemesh-accept"));
    EventLoopGroup workers =
        transport.newGroup(config.workerThreads(), FatalErrors.threads("nodemesh-io"));
    timeline.mark("event loops");
    Interception interception;
    try {
      interception = interception(config.interception());
    } catch (IOException | RuntimeException e) {
      closeQuietly(null, null, null, null, accept, workers);
      accessLog.close();
      throw e;
    }
    timeline.mark("interception");
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
    // The CA client starts after the re-enrolment below has (its start is class loading that the
    // re-enrolment's waiting for iptables-restore overlaps); the tunnel asks this one meanwhile.
    DeferredIdentityProvider deferredIdentities = null;
    if (identities == null && config.identity() != null) {
      deferredIdentities = new DeferredIdentityProvider();
      identities = deferredIdentities;
    }
    Authorizer policy =
        new FailClosedAuthorizer(authorizer != null ? authorizer : new PolicyAuthorizer());
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
        DataPlane.builder(
                transport, accept, workers, snapshots, pods, metrics, interception, PROXY_MARK)
            .authorizer(policy)
            .trustDomain(config.trustDomain())
            .tunnel(tunnel)
            .accessLog(accessLog)
            .paths(config.paths())
            .connectionsPerPod(perPod)
            .upstreamConnectionsPerPod(upstreamPerPod)
            .timeouts(config.timeouts())
            .serviceRange(config.serviceRange())
            .build();
    Readiness readiness = new Readiness(snapshots, pods, config.nodeName());
    Map<String, EventLoopGroup> loops = new LinkedHashMap<>();
    loops.put("accept", accept);
    loops.put("io", workers);
    // Ticking starts once the proxy is up: a start that fails shuts the loops down first.
    LoopWatchdog watchdog =
        new LoopWatchdog(
            loops,
            System::nanoTime,
            isolation.loopLagUnhealthy(),
            isolation.loopStallFatal(),
            reason -> FatalErrors.die(reason, null));
    ProxyHealth health =
        ProxyHealth.bind(
            metrics,
            loops,
            watchdog,
            () -> snapshots.current().version(),
            pods::size,
            readiness::ready);
    Counter rejected = health.configRejected();
    health.bindCapture(snapshots::current);
    if (saved != null) {
      health.configApplied("saved", Duration.between(saved.config().acceptedAt(), Instant.now()));
      timeline.markOnce("config in force");
    }
    AutoCloseable watcher = null;
    ExecutorService agentThread = null;
    AgentServer agent = null;
    AdminServer admin = null;
    Enroller enroller = null;
    IdentityClient identity = null;
    AtomicReference<@Nullable CertificateManager> certificates = new AtomicReference<>();
    // What the agent thread runs once the recorded pods are enrolled and the rest of the start is
    // done (the agent socket serves): the xDS enrolment report's start, if any. Until then
    // readiness stays held, so /ready still means what it meant when the start was one sequence.
    CompletableFuture<Runnable> afterStart = new CompletableFuture<>();
    try {
      agentThread =
          Executors.newSingleThreadExecutor(new DefaultThreadFactory("nodemesh-agent", true));
      enroller = new Enroller(plane, interception);
      // First of what can wait: re-enrolling the recorded pods is mostly waiting for
      // iptables-restore and netlink, which the start of the admin port, the CA client, the config
      // source and the agent socket below overlap (issue 19). Queued on the agent thread before the
      // socket accepts, so every AddPod/DelPod runs after it.
      readiness.hold("re-enrolling the pods recorded in " + config.cniRunDir());
      Enroller reenrol = enroller;
      Future<?> unused =
          agentThread.submit(
              () -> {
                timeline.mark("re-enrolment start");
                reenrolRecordedPods(config.cniRunDir(), reenrol);
                timeline.mark("re-enrolment end");
                Runnable then;
                try {
                  then = afterStart.get();
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt(); // closing before the start finished
                  return;
                } catch (ExecutionException e) {
                  return; // the start failed and closes everything
                }
                readiness.release();
                then.run();
              });
      admin =
          AdminServer.start(
              config.adminAddress(),
              metrics::scrape,
              // Ready once a config is in force (at once from a directory, after the first
              // accepted update over xDS) and this node's pods are enrolled.
              () -> {
                String notReady = readiness.notReadyReason();
                if (notReady == null) {
                  timeline.ready();
                }
                return notReady;
              },
              watchdog::unhealthyReason,
              () -> {
                CertificateManager held = certificates.get();
                return held == null
                    ? ConfigDump.json(snapshots.current())
                    : ConfigDump.json(snapshots.current(), held.held());
              });
      timeline.mark("admin");
      if (deferredIdentities != null) {
        identity =
            IdentityClient.start(
                Objects.requireNonNull(config.identity(), "identity"),
                config.nodeName(),
                config.xdsTarget(),
                toControlPlane,
                snapshots,
                metrics.registry());
        certificates.set(identity.manager());
        deferredIdentities.set(identity.manager());
        timeline.mark("identity");
      }
      String xdsTarget = config.xdsTarget();
      Path configDir = config.configDir();
      Runnable reportEnrolments = () -> {};
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
                xdsTarget,
                xdsCredentials,
                config.nodeName(),
                snapshots,
                rejected,
                new XdsClient.Listener() {
                  @Override
                  public void accepted(
                      ConfigSnapshot snapshot, Map<String, List<Resource>> resources) {
                    health.configApplied("xds", Duration.ZERO);
                    timeline.markOnce("config in force");
                    save(store, config.nodeName(), snapshot.version(), resources);
                  }

                  @Override
                  public void initialFetchTimedOut(List<String> missingTypeUrls) {
                    health.initialFetchTimeouts().increment();
                  }
                },
                config.xds());
        watcher = xds;
        // The control plane marks a pod captured only once this node reports it enrolled; the
        // first report waits for the start-up re-enrolment.
        EnrolmentReporter reporter = xds.enrolmentReporter(config.nodeName(), pods::uids);
        pods.onChange(reporter::changed);
        reportEnrolments = reporter::start;
        health.bindXds(xds.client()::connected);
      } else {
        watcher =
            ConfigWatcher.start(
                Objects.requireNonNull(configDir, "configDir"),
                s -> {
                  ConfigSnapshot old = snapshots.swap(s);
                  health.configApplied("local", Duration.ZERO);
                  timeline.markOnce("config in force");
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
      timeline.mark("config source");
      agent = AgentServer.start(config.agentSocket(), new NodeAgentService(enroller, agentThread));
      timeline.mark("agent socket");
      readiness.supersededWhen(agent::superseded);
      afterStart.complete(reportEnrolments);
      log.info(
          "node proxy for {} ready: agent {}, admin http://{}",
          config.nodeName(),
          config.agentSocket(),
          hostPort(admin.address()));
      NodeProxy proxy =
          new NodeProxy(plane, watcher, enroller, agentThread, agent, admin, readiness, watchdog);
      proxy.identity = identity;
      watchdog.start(WATCHDOG_PERIOD);
      return proxy;
    } catch (Exception | Error e) {
      afterStart.completeExceptionally(e);
      if (admin != null) {
        admin.close();
      }
      closeQuietly(agent, enroller, agentThread, watcher, accept, workers);
      closeQuietly(identity);
      interception.close();
      accessLog.close();
      throw e;
    }
  }

  /**
   * The saved snapshot when it is whole, of this format, for this node and valid by today's rules;
   * otherwise null, with a log line saying why (the proxy then starts with no config in force).
   */
  private static @Nullable Saved loadSaved(SnapshotStore store, String nodeName) {
    String refused =
        "inbound connections to enrolled pods are refused until the control plane's first config"
            + " arrives";
    SnapshotStore.Load load;
    try {
      load = store.load();
    } catch (IOException e) {
      load = new SnapshotStore.Load.Unusable("cannot read it: " + e);
    }
    String unusable;
    if (load instanceof SnapshotStore.Load.Missing) {
      log.warn("no saved config at {}: {}", store.file(), refused);
      return null;
    } else if (load instanceof SnapshotStore.Load.Unusable u) {
      unusable = u.reason();
    } else if (load instanceof SnapshotStore.Load.Found f) {
      SavedConfig c = f.config();
      if (!c.nodeName().equals(nodeName)) {
        unusable = "saved for node " + c.nodeName() + ", this proxy serves " + nodeName;
      } else {
        try {
          ConfigSnapshot snapshot = c.toSnapshot();
          log.info(
              "saved config from {} in force before any pod is enrolled (accepted at {}): {}",
              store.file(),
              c.acceptedAt(),
              snapshot.describe());
          return new Saved(c, snapshot);
        } catch (IllegalArgumentException e) {
          unusable = "no longer valid: " + e.getMessage();
        }
      }
    } else {
      throw new AssertionError(load);
    }
    log.error(
        "saved config {} is not usable, ignoring it ({}): {}", store.file(), unusable, refused);
    return null;
  }

  /** A saved config that loaded, and the snapshot it makes. */
  private record Saved(SavedConfig config, ConfigSnapshot snapshot) {}

  /** Saves an accepted snapshot; a failure is logged and the proxy goes on with it in force. */
  private static void save(
      SnapshotStore store, String nodeName, long version, Map<String, List<Resource>> resources) {
    try {
      store.save(nodeName, version, resources);
    } catch (IOException | RuntimeException e) {
      log.warn(
          "saving config version {} to {} failed; a restart would start from an older one or"
              + " none: {}",
          version,
          store.file(),
          e.toString());
    }
  }

  /** Restart without unmeshing: the pods the CNI plugin recorded are enrolled before /ready. */
  private static void reenrolRecordedPods(Path runDir, Enroller enroller) {
    try {
      log.info("pods from {}: {}", runDir, RecordReconciler.run(new PodRecords(runDir), enroller));
    } catch (IOException | RuntimeException e) {
      log.warn("re-enrolling the pods recorded in {} failed: {}", runDir, e.toString());
    }
  }

  private static Interception interception(InterceptionMode mode) throws IOException {
    Interception chosen =
        InterceptionSelector.forNode(
                m -> EbpfInterception.start(m, NodeProxyConfig.OUTBOUND_PORT, PROXY_MARK),
                m ->
                    new IptablesInterception(
                        RedirectRules.defaults(), CallerAddressRouting.defaults()))
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

  /** What {@code /ready} answers (tests read it without going through the admin port). */
  public Readiness readiness() {
    return readiness;
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
    // First: the loops' shutdown below is not a death.
    watchdog.close();
    stopAccepting();
    admin.close();
    closeQuietly(null, null, null, configSource, plane.acceptGroup(), plane.workerGroup());
    // Only now that no event loop runs: until then a connection drained in the grace period may
    // still dial a new upstream from inside a pod's namespace, through the handle closed here.
    onAgentThread(agentThread, enroller::close, "closing the pods' namespace handles");
    agentThread.shutdownNow();
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
    try {
      agent.close();
    } catch (Exception e) {
      log.warn("closing the agent socket: {}", e.toString());
    }
    // The listeners only: the pods stay enrolled, and their namespace handles open, while
    // connections drain (close() releases them).
    onAgentThread(agentThread, enroller::stopListening, "closing pod listeners");
  }

  private static void onAgentThread(ExecutorService agentThread, Runnable task, String what) {
    try {
      agentThread.submit(task).get(30, TimeUnit.SECONDS);
    } catch (Exception ex) {
      log.warn("{}: {}", what, ex.toString());
    }
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
