package dev.nodemesh.control;

import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.admin.HealthServer;
import dev.nodemesh.control.ca.CaMetrics;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CertificateService;
import dev.nodemesh.control.ca.ServingCertificate;
import dev.nodemesh.control.ca.TrustBundlePublisher;
import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.enrolment.EnrolmentService;
import dev.nodemesh.control.source.Source;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.StoreSnapshot;
import dev.nodemesh.control.store.VersionedResource;
import dev.nodemesh.control.translate.NodeViews;
import dev.nodemesh.control.xds.DeltaAdsServer;
import dev.nodemesh.control.xds.ServerLimits;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.ServerCredentials;
import io.grpc.netty.NettyServerBuilder;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A running control plane: source → store → debounced translation → xDS delta server.
 *
 * <p>Threads: {@code nodemesh-control} (one) owns the store, the translation and every node
 * stream's state; the source's own threads (informers, or the directory poller) only post to it;
 * gRPC's Netty threads carry bytes and hop onto it; {@code nodemesh-control-admin} serves health
 * and metrics.
 *
 * <p>Metrics: {@link ControlMetrics} (store, translation) and {@link
 * dev.nodemesh.control.xds.XdsMetrics} (pushes, NACKs, connected nodes, push latency).
 *
 * <p>Debounce: the first change after a push schedules the next push {@code debounce} later, and
 * changes until then ride along, so a burst (a Deployment rolling, a file saved in pieces) becomes
 * one push, and a change waits at most {@code debounce}. Nothing is pushed before the source has
 * synced once, so no node ever sees a half-listed cluster.
 */
public final class ControlPlane implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ControlPlane.class);
  private static final long NOT_READY_RETRY_MILLIS = 50;

  /** How often the published trust bundle is checked against the CA's (and rewritten if off). */
  private static final long TRUST_BUNDLE_RECONCILE_SECONDS = 300;

  private final ScheduledExecutorService executor;
  private final ExecutorService grpcExecutor = ServerLimits.handlerExecutor();
  private final Source source;
  private final ResourceStore store;
  private final DeltaAdsServer ads;
  private final PrometheusMeterRegistry registry;
  private final Duration debounce;
  private @Nullable Server server;
  private @Nullable HealthServer health;
  private @Nullable ScheduledFuture<?> pending;
  private volatile boolean pushedOnce;
  private volatile long pushedRevision = -1;
  private List<String> lastConflicts = List.of();
  private final ControlMetrics metrics;
  private @Nullable NodeViews lastViews;
  // What the nodes were last sent: the CA checks workloads against it from gRPC threads.
  private volatile @Nullable StoreSnapshot published;
  private @Nullable CaMetrics caMetrics;
  private @Nullable ServingCertificate serving;
  private @Nullable TrustBundlePublisher publisher;

  private ControlPlane(Source source, Duration debounce) {
    this.executor =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-control");
              t.setDaemon(true);
              return t;
            });
    this.source = source;
    this.debounce = debounce;
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    this.store = new ResourceStore(System::nanoTime, this::changed);
    this.ads = new DeltaAdsServer(executor, System::nanoTime, registry);
    this.metrics = new ControlMetrics(registry, () -> pushedOnce);
  }

  /**
   * Starts the source, the xDS server on {@code listen} and the health endpoint on {@code admin}
   * (null: none). Returns once both listen; readiness comes when the source has synced.
   */
  public static ControlPlane start(
      Source source, InetSocketAddress listen, @Nullable InetSocketAddress admin, Duration debounce)
      throws Exception {
    return start(source, listen, admin, debounce, null);
  }

  /**
   * As {@link #start(Source, InetSocketAddress, InetSocketAddress, Duration)}, with the certificate
   * service on the same gRPC server when {@code ca} is given, and TLS on that server when {@code
   * ca} names serving SANs.
   */
  public static ControlPlane start(
      Source source,
      InetSocketAddress listen,
      @Nullable InetSocketAddress admin,
      Duration debounce,
      @Nullable CaOptions ca)
      throws Exception {
    ControlPlane cp = new ControlPlane(source, debounce);
    try {
      ServerCredentials credentials = InsecureServerCredentials.create();
      if (ca != null && !ca.tlsSans().isEmpty()) {
        cp.serving =
            ServingCertificate.start(
                ca.authority(), ca.tlsSans(), ca.authority().settings().defaultTtl(), cp.executor);
        credentials = cp.serving.credentials();
      }
      // With a CA, a node proves itself on the xDS stream with the credential the CA takes.
      NettyServerBuilder builder =
          NettyServerBuilder.forAddress(listen, credentials)
              .addService(ca == null ? cp.ads.definition() : cp.ads.definition(ca.authenticator()));
      // Served whether or not the source gates capture on it, so a proxy's report never fails.
      EnrolmentRegistry enrolments = source.enrolments();
      builder.addService(
          new EnrolmentService(
                  enrolments != null ? enrolments : new EnrolmentRegistry(),
                  ca == null ? null : ca.authenticator())
              .definition());
      if (ca != null) {
        CaMetrics metrics = new CaMetrics(cp.registry, ca.authority());
        cp.caMetrics = metrics;
        builder.addService(
            new CertificateService(ca.authority(), ca.authenticator(), cp::workload, metrics)
                .definition());
        log.info(
            "CA: trust domain {}, nodes (CA and xDS) by {}, {}",
            ca.authority().settings().trustDomain(),
            ca.authenticator().describe(),
            ca.tlsSans().isEmpty() ? "plaintext gRPC" : "TLS for " + ca.tlsSans());
      }
      TrustBundlePublisher publisher = ca == null ? null : ca.publisher();
      if (publisher != null) {
        // Before the server listens: a proxy that finds no root to verify us by cannot connect.
        cp.publisher = publisher.start(TRUST_BUNDLE_RECONCILE_SECONDS);
      }
      cp.server =
          ServerLimits.apply(builder, cp.grpcExecutor)
              .permitKeepAliveTime(10, TimeUnit.SECONDS)
              .build()
              .start();
      if (admin != null) {
        cp.health = HealthServer.start(admin, cp::ready, cp.registry::scrape);
      }
      source.start(cp.store, cp.executor);
      cp.executor.execute(cp::changed); // the first push, once the source is ready
      log.info(
          "control plane on {} serving {}; health on {}",
          cp.address(),
          source.describe(),
          cp.health == null ? "-" : cp.health.address());
      return cp;
    } catch (Exception | Error e) {
      cp.close();
      throw e;
    }
  }

  private void changed() {
    if (pending == null) {
      pending = executor.schedule(this::push, debounce.toNanos(), TimeUnit.NANOSECONDS);
    }
  }

  private void push() {
    pending = null;
    if (!source.ready()) {
      pending = executor.schedule(this::push, NOT_READY_RETRY_MILLIS, TimeUnit.MILLISECONDS);
      return;
    }
    long started = System.nanoTime();
    NodeViews views = NodeViews.of(store.snapshot(), lastViews);
    lastViews = views;
    if (!views.conflicts().equals(lastConflicts)) {
      views.conflicts().forEach(c -> log.warn("{}", c));
      lastConflicts = views.conflicts();
    }
    ads.push(views);
    published = views.snapshot();
    pushedRevision = views.snapshot().revision();
    metrics.pushed(views.snapshot(), views.conflicts().size(), System.nanoTime() - started);
    if (!pushedOnce) {
      log.info("source {} synced; serving revision {}", source.describe(), store.revision());
    }
    pushedOnce = true;
  }

  /** The workload {@code namespace/name} as last pushed to the nodes, or null. */
  private @Nullable Workload workload(String namespace, String name) {
    StoreSnapshot s = published;
    VersionedResource r =
        s == null ? null : s.of(ResourceType.WORKLOAD).get(namespace + "/" + name);
    return r == null ? null : (Workload) r.message();
  }

  /** The CA's meters, or null when this control plane runs no CA. */
  public @Nullable CaMetrics caMetrics() {
    return caMetrics;
  }

  /** The store revision of the latest push (-1 before the first); for tests and status. */
  public long pushedRevision() {
    return pushedRevision;
  }

  /** Ready once the source has synced and the first push was computed. */
  public boolean ready() {
    return pushedOnce;
  }

  public InetSocketAddress address() {
    Server s = server;
    if (s == null) {
      throw new IllegalStateException("not started");
    }
    return (InetSocketAddress) s.getListenSockets().get(0);
  }

  public @Nullable InetSocketAddress healthAddress() {
    HealthServer h = health;
    return h == null ? null : h.address();
  }

  public DeltaAdsServer ads() {
    return ads;
  }

  public PrometheusMeterRegistry registry() {
    return registry;
  }

  @Override
  public void close() throws IOException, InterruptedException {
    source.close();
    HealthServer h = health;
    if (h != null) {
      h.close();
    }
    TrustBundlePublisher p = publisher;
    if (p != null) {
      p.close();
    }
    ServingCertificate sc = serving;
    if (sc != null) {
      sc.close();
    }
    Server s = server;
    if (s != null) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    // The server's termination does not wait for the calls' last callbacks (a cancelled stream's
    // handler), which hand work to executor: let them run before executor stops taking work, or
    // each is a RejectedExecutionException that gRPC logs as SEVERE.
    grpcExecutor.shutdown();
    if (!grpcExecutor.awaitTermination(5, TimeUnit.SECONDS)) {
      grpcExecutor.shutdownNow();
    }
    executor.shutdownNow();
  }
}
