package dev.nodemesh.control.status;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.parse.ResourceParser;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.ServicePort;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderCallbacks;
import io.fabric8.kubernetes.client.extended.leaderelection.LeaderElectionConfigBuilder;
import io.fabric8.kubernetes.client.extended.leaderelection.resourcelock.LeaseLock;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import io.fabric8.kubernetes.client.utils.KubernetesSerialization;
import java.time.Clock;
import java.time.Duration;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Writes {@link RouteStatus} to the HTTPRoutes and GRPCRoutes the Kubernetes source watches,
 * through the status subresource, and only when it differs from what the route has: our own write
 * comes back as an informer event, is recomputed to the same status, and stops there.
 *
 * <p>Every write is a PUT carrying the resourceVersion the status was computed from, so a write
 * based on a stale cache fails with 409 instead of undoing a newer change; the newer version's own
 * event recomputes it. A route is recomputed when it changes, and every route when a Service
 * appears or goes (its backends or parent may be that Service), a ReferenceGrant changes, or a
 * GRPCRoute's spec changes (an HTTPRoute on the same Service port loses to it).
 *
 * <p>Replicas: with a {@link Lease}, only the holder of a coordination.k8s.io Lease writes
 * (fabric8's LeaderElector), and a new holder recomputes every route. Without one (tests, a single
 * replica) this writer always writes. Two writers would not fight for long anyway (both compute the
 * same status from the same objects and keep transition times), but while their caches disagree
 * each would undo the other's write.
 *
 * <p>Threads: one, {@code nodemesh-control-status}, does all the computing and the blocking API
 * calls, off the control plane's executor; the informers only post to it.
 */
public final class RouteStatusWriter implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(RouteStatusWriter.class);

  /** The Lease's name in the deployment (deploy/kubernetes/10-control-rbac.yaml grants it). */
  public static final String LEASE = "nodemesh-control-route-status";

  /** Where the Lease lives and who this replica is in it. */
  public record Lease(String namespace, String name, String identity) {}

  private final KubernetesClient client;
  private final String controller;
  private final Clock clock;
  private final @Nullable Lease lease;
  private final ScheduledExecutorService executor;
  private final Map<String, Watched> kinds = new LinkedHashMap<>();
  private final Map<String, String> lastFailure = new HashMap<>();
  // Route → our last successful write: the resourceVersion it replaced and the parents it wrote.
  // While the cache still shows that version our write has not come back yet, and what the server
  // holds is what we wrote: comparing against the stale cache would write the same status again.
  private final Map<String, Written> written = new HashMap<>();

  private record Written(String fromVersion, JsonNode parents) {}

  private final AtomicLong writes = new AtomicLong();
  private final AtomicBoolean allQueued = new AtomicBoolean();
  private @Nullable SharedIndexInformer<Service> services;
  private @Nullable SharedIndexInformer<GenericKubernetesResource> grantInformer;
  private @Nullable List<ReferenceGrant> grants; // status thread only; null: parse again
  private @Nullable List<HttpRoute> grpcRoutes; // status thread only; null: parse again
  private volatile boolean leading;
  private volatile boolean closed;
  private volatile @Nullable CompletableFuture<?> election;

  private record Watched(
      ResourceDefinitionContext context, SharedIndexInformer<GenericKubernetesResource> informer) {}

  public RouteStatusWriter(
      KubernetesClient client, String controller, Clock clock, @Nullable Lease lease) {
    this.client = client;
    this.controller = controller;
    this.clock = clock;
    this.lease = lease;
    this.executor =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-control-status");
              t.setDaemon(true);
              return t;
            });
  }

  /** HTTPRoutes or GRPCRoutes: recompute a route when it changes. */
  public void watchRoutes(
      String kind,
      ResourceDefinitionContext context,
      SharedIndexInformer<GenericKubernetesResource> informer) {
    kinds.put(kind, new Watched(context, informer));
    boolean grpc = kind.equals("GRPCRoute");
    informer.addEventHandler(
        new ResourceEventHandler<>() {
          @Override
          public void onAdd(GenericKubernetesResource r) {
            post(() -> reconcile(kind, key(r)));
            if (grpc) {
              grpcChanged();
            }
          }

          @Override
          public void onUpdate(GenericKubernetesResource old, GenericKubernetesResource r) {
            post(() -> reconcile(kind, key(r)));
            // Not on our own status writes: only a new spec can take a port from an HTTPRoute.
            if (grpc
                && !Objects.equals(
                    old.getAdditionalProperties().get("spec"),
                    r.getAdditionalProperties().get("spec"))) {
              grpcChanged();
            }
          }

          @Override
          public void onDelete(GenericKubernetesResource r, boolean unknown) {
            post(
                () -> {
                  lastFailure.remove(kind + " " + key(r));
                  written.remove(kind + " " + key(r));
                });
            if (grpc) {
              grpcChanged();
            }
          }
        });
  }

  /** Services: every route is recomputed when one appears or goes. */
  public void watchServices(SharedIndexInformer<Service> informer) {
    services = informer;
    informer.addEventHandler(
        new ResourceEventHandler<>() {
          @Override
          public void onAdd(Service s) {
            requestAll();
          }

          @Override
          public void onUpdate(Service old, Service s) {
            if (!ports(old).equals(ports(s))) {
              requestAll(); // a parentRef's port may come or go
            }
          }

          @Override
          public void onDelete(Service s, boolean unknown) {
            requestAll();
          }
        });
  }

  /** ReferenceGrants: every route is recomputed when one changes (its backendRefs may need it). */
  public void watchReferenceGrants(SharedIndexInformer<GenericKubernetesResource> informer) {
    grantInformer = informer;
    informer.addEventHandler(
        new ResourceEventHandler<>() {
          @Override
          public void onAdd(GenericKubernetesResource g) {
            grantsChanged();
          }

          @Override
          public void onUpdate(GenericKubernetesResource old, GenericKubernetesResource g) {
            grantsChanged();
          }

          @Override
          public void onDelete(GenericKubernetesResource g, boolean unknown) {
            grantsChanged();
          }
        });
  }

  private void grpcChanged() {
    post(() -> grpcRoutes = null);
    requestAll();
  }

  /** The GRPCRoutes in the informer's cache that parse, once per change (status thread). */
  private List<HttpRoute> grpcRoutes() {
    List<HttpRoute> g = grpcRoutes;
    if (g == null) {
      g = new ArrayList<>();
      Watched w = kinds.get("GRPCRoute");
      if (w != null) {
        KubernetesSerialization json = client.getKubernetesSerialization();
        ResourceParser parser = new ResourceParser("kubernetes", new ArrayList<>());
        for (GenericKubernetesResource r : w.informer().getIndexer().list()) {
          JsonNode tree = json.convertValue(r, JsonNode.class);
          if (tree instanceof ObjectNode o) {
            o.put("kind", "GRPCRoute");
          }
          HttpRoute parsed = parser.grpcRoute(tree, "GRPCRoute " + key(r));
          if (parsed != null) {
            g.add(parsed); // a refused one is reported on its own status
          }
        }
      }
      grpcRoutes = g;
    }
    return g;
  }

  private void grantsChanged() {
    post(() -> grants = null);
    requestAll();
  }

  /** The valid ReferenceGrants in the informer's cache, parsed once per change (status thread). */
  private List<ReferenceGrant> grants() {
    List<ReferenceGrant> g = grants;
    if (g == null) {
      g = new ArrayList<>();
      SharedIndexInformer<GenericKubernetesResource> i = grantInformer;
      if (i != null) {
        KubernetesSerialization json = client.getKubernetesSerialization();
        List<String> errors = new ArrayList<>();
        ResourceParser parser = new ResourceParser("kubernetes", errors);
        for (GenericKubernetesResource r : i.getIndexer().list()) {
          ReferenceGrant parsed =
              parser.referenceGrant(
                  json.convertValue(r, JsonNode.class), "ReferenceGrant " + key(r));
          if (parsed != null) {
            g.add(parsed); // an invalid one grants nothing (the source logs why)
          }
        }
      }
      grants = g;
    }
    return g;
  }

  /** Starts writing: at once without a Lease, else once this replica holds it. */
  public void start() {
    Lease l = lease;
    if (l == null) {
      post(
          () -> {
            leading = true;
            reconcileAll();
          });
    } else {
      elect(l);
    }
  }

  private void elect(Lease l) {
    if (closed) {
      return;
    }
    var config =
        new LeaderElectionConfigBuilder()
            .withName(l.name())
            .withLock(new LeaseLock(l.namespace(), l.name(), l.identity()))
            .withLeaseDuration(Duration.ofSeconds(15))
            .withRenewDeadline(Duration.ofSeconds(10))
            .withRetryPeriod(Duration.ofSeconds(2))
            .withReleaseOnCancel(true)
            .withLeaderCallbacks(
                new LeaderCallbacks(
                    () ->
                        post(
                            () -> {
                              log.info("route status: {} holds the lease, writing", l.identity());
                              leading = true;
                              reconcileAll();
                            }),
                    () -> leading = false,
                    holder -> log.debug("route status written by {}", holder)))
            .build();
    CompletableFuture<?> f = client.leaderElector().withConfig(config).build().start();
    election = f;
    // The elector ends when the lease is lost (or could not be read): campaign again.
    f.whenComplete(
        (ok, e) -> {
          leading = false;
          if (!closed) {
            if (e != null) {
              log.warn("route status lease {}/{}: {}", l.namespace(), l.name(), e.toString());
            }
            try {
              executor.schedule(() -> elect(l), 2, TimeUnit.SECONDS);
            } catch (RejectedExecutionException closing) {
              // closed meanwhile
            }
          }
        });
  }

  /** Whether this replica writes route status now. */
  public boolean leading() {
    return leading;
  }

  /** Status writes attempted so far (successful or not); for tests and metrics. */
  public long writes() {
    return writes.get();
  }

  private void post(Runnable task) {
    if (!closed) {
      try {
        executor.execute(task);
      } catch (RejectedExecutionException closing) {
        // closed meanwhile: nothing more is written
      }
    }
  }

  /**
   * Every route, once: the Services' initial list (and any burst) asks many times, and all asks
   * made while one pass is queued ride on it.
   */
  private void requestAll() {
    if (allQueued.compareAndSet(false, true)) {
      post(
          () -> {
            allQueued.set(false);
            reconcileAll();
          });
    }
  }

  private void reconcileAll() {
    kinds.forEach(
        (kind, w) -> {
          for (GenericKubernetesResource r : w.informer().getIndexer().list()) {
            reconcile(kind, key(r));
          }
        });
  }

  private void reconcile(String kind, String key) {
    Watched w = kinds.get(kind);
    if (!leading || closed || w == null) {
      return;
    }
    GenericKubernetesResource route = w.informer().getIndexer().getByKey(key);
    String label = kind + " " + key;
    if (route == null) {
      written.remove(label);
      return;
    }
    String version = route.getMetadata().getResourceVersion();
    KubernetesSerialization json = client.getKubernetesSerialization();
    JsonNode tree = json.convertValue(route, JsonNode.class);
    if (tree instanceof ObjectNode o) {
      o.put("kind", kind); // a list's items may come without it; grants are per route kind
    }
    List<String> errors = new ArrayList<>();
    ResourceParser parser = new ResourceParser("kubernetes", errors);
    if (kind.equals("GRPCRoute")) {
      parser.grpcRoute(tree, label);
    } else {
      parser.httpRoute(tree, label);
    }
    ArrayNode desired =
        RouteStatus.parents(
            tree,
            errors,
            this::servicePorts,
            grants(),
            kind.equals("GRPCRoute") ? List.of() : grpcRoutes(),
            clock.instant().truncatedTo(ChronoUnit.SECONDS).toString(),
            controller);
    JsonNode current = tree.path("status").path("parents");
    Written last = written.get(label);
    if (last != null && last.fromVersion().equals(version)) {
      current = last.parents();
    } else {
      written.remove(label);
    }
    if (desired.equals(current) || (desired.isEmpty() && !current.isArray())) {
      return;
    }
    GenericKubernetesResource copy = json.clone(route);
    Map<String, Object> status = new LinkedHashMap<>();
    if (copy.getAdditionalProperties().get("status") instanceof Map<?, ?> old) {
      old.forEach((k, v) -> status.put(String.valueOf(k), v));
    }
    status.put("parents", json.convertValue(desired, List.class));
    copy.setAdditionalProperty("status", status);
    writes.incrementAndGet();
    try {
      client
          .genericKubernetesResources(w.context())
          .inNamespace(route.getMetadata().getNamespace())
          .resource(copy)
          .updateStatus();
      if (version != null) {
        written.put(label, new Written(version, desired));
      }
      lastFailure.remove(label);
    } catch (KubernetesClientException e) {
      if (e.getCode() == 409 || e.getCode() == 404) {
        return; // a newer version (or the deletion) is on its way as an event
      }
      String text = e.getCode() + " " + e.getMessage();
      if (!Objects.equals(lastFailure.put(label, text), text)) {
        log.warn("cannot write the status of {}: {}", label, text);
      }
    }
  }

  private @Nullable Set<Integer> servicePorts(String namespace, String name) {
    SharedIndexInformer<Service> s = services;
    Service svc = s == null ? null : s.getIndexer().getByKey(namespace + "/" + name);
    return svc == null ? null : ports(svc);
  }

  private static Set<Integer> ports(Service svc) {
    Set<Integer> out = new TreeSet<>();
    if (svc.getSpec() != null && svc.getSpec().getPorts() != null) {
      for (ServicePort p : svc.getSpec().getPorts()) {
        if (p.getPort() != null) {
          out.add(p.getPort());
        }
      }
    }
    return out;
  }

  private static String key(HasMetadata o) {
    return o.getMetadata().getNamespace() + "/" + o.getMetadata().getName();
  }

  @Override
  public void close() {
    closed = true;
    CompletableFuture<?> f = election;
    if (f != null) {
      f.cancel(true); // releases the lease (releaseOnCancel) so another replica takes over at once
    }
    executor.shutdownNow();
    try {
      executor.awaitTermination(5, TimeUnit.SECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
