package dev.nodemesh.control.source;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.status.RouteStatusWriter;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.InputSlot;
import dev.nodemesh.model.kind.Inputs;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.kind.ServiceKind;
import dev.nodemesh.model.kind.WorkloadKind;
import dev.nodemesh.model.kind.YamlKind;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.PatchContext;
import io.fabric8.kubernetes.client.dsl.base.PatchType;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Executor;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster as a source: fabric8 shared informers on the core kinds (Pods, Services,
 * EndpointSlices, Namespaces, and Nodes for their zones), typed and wired by hand, and one generic
 * informer per custom kind of the model's registry ({@link ResourceKinds.Yaml#ALL}: the mesh's
 * security CRDs, which must be installed, and the Gateway API routes and ReferenceGrants and the
 * mesh's traffic kinds, watched when their CRDs are installed), in every namespace. A new custom
 * kind in the registry is watched with no change here. The informers list, watch, re-list when a
 * watch expires, and resync every {@code resyncMillis}; events are only hopped onto the
 * control-plane executor, where each object is turned into its resource. A resync or relist that
 * changes nothing is invisible downstream, because the store versions resources by content.
 *
 * <p>Every object is validated by its registry kind's parser, the node proxy's own (the object is
 * turned into the same JSON tree YAML gives), so both sources accept exactly the same objects, and
 * resolved against the input-only kinds (a route's backendRefs against the ReferenceGrants; a grant
 * that changes re-derives the kinds that read it). An object that fails is logged once per distinct
 * problem and its last good resource stays. A pod without an IP yet, finished (Succeeded/Failed,
 * whose IP may already be reused), or on the host network (its IP is the node's, shared with every
 * other such pod; it is not meshed) is not a workload. EndpointSlices matter only for Services
 * without a selector (their endpoints become workload uids); with a selector, readiness travels on
 * the Workload so one pod change stays one resource. Namespaces are watched so readiness waits for
 * them; the authorization issue will use their labels.
 *
 * <p>A workload's zone is its node's {@value Workload#ZONE_LABEL} label (else the deprecated
 * {@value KubernetesDerivations#LEGACY_ZONE_LABEL}); only when the node has neither does a zone
 * label on the Pod itself count. A node whose zone changes has its pods derived again.
 *
 * <p>This class wires the informers and keeps their state; the Kubernetes-specific rules (which
 * pods are workloads, readiness, zones, EndpointSlice membership) are pure functions in {@link
 * KubernetesDerivations}, unit-tested on hand-built objects.
 *
 * <p>With a {@link RouteStatusWriter}, the Accepted/ResolvedRefs status of the HTTPRoutes and
 * GRPCRoutes attached to Services is written back (see there).
 *
 * <p>Enrolment (with an {@link EnrolmentRegistry}): a pod in the capture scope is captured only
 * when its {@value #ENROLLED_ANNOTATION} annotation names its own node. A pod running since before
 * nodemesh was installed matches the scope but was never enrolled (no CNI ADD ran for it), so
 * nothing would serve a tunnel to it. Each node's report that changes something makes this source
 * patch (JSON merge patch, on its own thread) the annotation of every pod on that node to match;
 * the annotation comes back through the informer. The annotation, not this replica's memory, is
 * what counts, so the state survives a control-plane restart and is the same on every replica.
 *
 * <p>Limits: only TCP ports are carried; a Service's UDP and SCTP ports are left out (as in local
 * mode), so kube-dns keeps its TCP port.
 */
public final class KubernetesSource implements Source {
  private static final Logger log = LoggerFactory.getLogger(KubernetesSource.class);
  private static final String SECURITY_GROUP = "security.nodemesh.dev";
  private static final String SECURITY_VERSION = "v1alpha1";

  private final KubernetesClient client;
  private final long resyncMillis;
  private final List<SharedIndexInformer<?>> informers = new ArrayList<>();
  private final Map<String, String> lastProblem = new HashMap<>();
  private @Nullable SharedIndexInformer<Service> services;
  private @Nullable SharedIndexInformer<Node> nodes;
  private @Nullable SharedIndexInformer<Pod> pods;
  // The zone each Node had when its pods were last derived (control-plane executor only).
  private final Map<String, String> nodeZones = new HashMap<>();
  private static final String POD_NODE_INDEX = "nodeName";

  private @Nullable SharedIndexInformer<EndpointSlice> slices;
  // One informer per custom kind of the registry (every YamlKind that is not a core kind).
  private final Map<YamlKind<?>, SharedIndexInformer<GenericKubernetesResource>> custom =
      new LinkedHashMap<>();
  // The valid input-only records (ReferenceGrants) by slot, then namespace/name (control-plane
  // executor only).
  private final Map<InputSlot<?>, Map<String, Object>> inputValues = new HashMap<>();
  private final Inputs inputs =
      new Inputs() {
        @Override
        @SuppressWarnings("unchecked") // the map of InputSlot<R> holds only Rs (see changed)
        public <R> List<R> of(InputSlot<R> slot) {
          return List.copyOf((Collection<R>) inputValues.getOrDefault(slot, Map.of()).values());
        }
      };

  private final @Nullable RouteStatusWriter routeStatus;
  private final CaptureScope scope;
  private final @Nullable EnrolmentRegistry enrolments;
  // Patches the enrolment annotation (API calls block): never the control-plane executor.
  private final @Nullable ExecutorService annotator;

  /**
   * The pod annotation that records enrolment: the name of the node whose proxy reported the pod
   * enrolled. It outlives a control-plane restart and is shared by every replica (each node reports
   * to one of them); it counts only when it names the pod's own {@code spec.nodeName}.
   */
  public static final String ENROLLED_ANNOTATION = "nodemesh.dev/enrolled-on";

  public KubernetesSource(KubernetesClient client, long resyncMillis) {
    this(client, resyncMillis, null);
  }

  /**
   * @param routeStatus writes Accepted/ResolvedRefs back to the routes this source reads; null to
   *     write nothing. Closed with this source.
   */
  public KubernetesSource(
      KubernetesClient client, long resyncMillis, @Nullable RouteStatusWriter routeStatus) {
    this(client, resyncMillis, routeStatus, CaptureScope.DEFAULT);
  }

  /**
   * @param scope the pods install-cni's plugin leaves alone (the same setting): their workloads go
   *     out uncaptured, so other nodes reach them directly and their node's /ready skips them
   */
  public KubernetesSource(
      KubernetesClient client,
      long resyncMillis,
      @Nullable RouteStatusWriter routeStatus,
      CaptureScope scope) {
    this(client, resyncMillis, routeStatus, scope, null);
  }

  /**
   * @param enrolments when given, a pod in the scope is captured only when it carries the {@value
   *     #ENROLLED_ANNOTATION} annotation naming its own node; this source writes that annotation
   *     from the nodes' reports (see the class comment). Null: capture follows the scope alone.
   */
  public KubernetesSource(
      KubernetesClient client,
      long resyncMillis,
      @Nullable RouteStatusWriter routeStatus,
      CaptureScope scope,
      @Nullable EnrolmentRegistry enrolments) {
    this.enrolments = enrolments;
    this.annotator =
        enrolments == null
            ? null
            : Executors.newSingleThreadExecutor(
                r -> {
                  Thread t = new Thread(r, "nodemesh-control-enrolment");
                  t.setDaemon(true);
                  return t;
                });
    this.client = client;
    this.resyncMillis = resyncMillis;
    this.routeStatus = routeStatus;
    this.scope = scope;
  }

  @Override
  public void start(ResourceStore store, Executor executor) {
    SharedIndexInformer<Service> svcInformer =
        client
            .services()
            .inAnyNamespace()
            .inform(
                handler(executor, s -> serviceChanged(store, s), s -> serviceGone(store, s)),
                resyncMillis);
    services = svcInformer;
    informers.add(svcInformer);
    SharedIndexInformer<EndpointSlice> sliceInformer =
        client
            .discovery()
            .v1()
            .endpointSlices()
            .inAnyNamespace()
            .inform(
                handler(executor, s -> sliceChanged(store, s), s -> sliceChanged(store, s)),
                resyncMillis);
    slices = sliceInformer;
    informers.add(sliceInformer);
    // Nodes before Pods, so a pod's first event usually finds its node's zone in the cache; when
    // it does not, the node's own event re-derives the pods on it.
    SharedIndexInformer<Node> nodeInformer =
        client
            .nodes()
            .inform(
                handler(executor, n -> nodeChanged(store, n), n -> nodeGone(store, n)),
                resyncMillis);
    nodes = nodeInformer;
    informers.add(nodeInformer);
    SharedIndexInformer<Pod> podInformer =
        client.pods().inAnyNamespace().runnableInformer(resyncMillis);
    podInformer.addIndexers(
        Map.of(
            POD_NODE_INDEX,
            p -> {
              String node = p.getSpec() == null ? null : p.getSpec().getNodeName();
              return List.of(node == null ? "" : node);
            }));
    podInformer.addEventHandler(
        handler(executor, p -> podChanged(store, p), p -> podGone(store, p)));
    podInformer.run(); // waits for the first list, and fails start() like inform() would
    pods = podInformer;
    informers.add(podInformer);
    EnrolmentRegistry reports = enrolments;
    ExecutorService patcher = annotator;
    if (reports != null && patcher != null) {
      reports.onChange(
          node -> {
            if (!patcher.isShutdown()) {
              patcher.execute(() -> annotate(reports, node));
            }
          });
      // Reports that came before the pods' first list.
      reports.nodes().forEach(node -> patcher.execute(() -> annotate(reports, node)));
    }
    informers.add(
        client
            .namespaces()
            .inform(handler(executor, (Namespace n) -> {}, (Namespace n) -> {}), resyncMillis));
    // Input-only kinds (ReferenceGrants) first, so their list is usually in before the first
    // route is derived (routes are not waited for either; a route derived first is derived again).
    List<YamlKind<?>> kinds = new ArrayList<>();
    for (YamlKind<?> kind : ResourceKinds.Yaml.ALL) {
      if (!kind.core()) {
        kinds.add(kind.slot() instanceof InputSlot<?> ? 0 : kinds.size(), kind);
      }
    }
    for (YamlKind<?> kind : kinds) {
      custom.put(kind, customInformer(executor, store, kind));
    }
    RouteStatusWriter status = routeStatus;
    if (status != null) {
      custom.forEach(
          (kind, informer) -> {
            if (kind.slot().equals(ResourceKinds.HTTP_ROUTE)) {
              status.watchRoutes(kind.kind(), definition(kind), informer);
            }
          });
      status.watchReferenceGrants(
          Objects.requireNonNull(custom.get(ResourceKinds.Yaml.REFERENCE_GRANT)));
      status.watchServices(svcInformer);
      status.start();
    }
    // Optional kinds start without waiting (after the status writer has its handlers): the
    // Gateway API or the traffic CRDs may not be installed, and a failed list is logged once.
    custom.forEach(
        (kind, informer) -> {
          if (!kind.required()) {
            informer
                .start()
                .exceptionally(
                    e -> {
                      log.warn(
                          "{} ({}) are not watched (CRD missing?): {}",
                          kind.plural(),
                          kind.group(),
                          e.toString());
                      return null;
                    });
          }
        });
  }

  private static ResourceDefinitionContext definition(YamlKind<?> kind) {
    return new ResourceDefinitionContext.Builder()
        .withGroup(kind.group())
        .withVersion(kind.version())
        .withKind(kind.kind())
        .withPlural(kind.plural())
        .withNamespaced(true)
        .build();
  }

  /**
   * An informer on one custom kind of the registry, as fabric8 generic resources, each object
   * validated by the same parser as local YAML. A required kind (the mesh's security CRDs) is
   * listed before this returns: without its CRD ({@code deploy/crds/}) the initial list fails and
   * the control plane does not start, rather than running with policy silently ignored. An optional
   * one is returned unstarted and does not hold back readiness.
   */
  private <R> SharedIndexInformer<GenericKubernetesResource> customInformer(
      Executor executor, ResourceStore store, YamlKind<R> kind) {
    ResourceEventHandler<GenericKubernetesResource> handler =
        handler(executor, r -> changed(store, kind, r), r -> gone(store, kind, r));
    var resources = client.genericKubernetesResources(definition(kind)).inAnyNamespace();
    if (!kind.required()) {
      SharedIndexInformer<GenericKubernetesResource> i = resources.runnableInformer(resyncMillis);
      i.addEventHandler(handler);
      return i;
    }
    try {
      SharedIndexInformer<GenericKubernetesResource> i = resources.inform(handler, resyncMillis);
      informers.add(i);
      return i;
    } catch (KubernetesClientException e) {
      throw new IllegalStateException(
          "cannot watch "
              + kind.plural()
              + "."
              + kind.group()
              + " (are the CRDs in deploy/crds installed?): "
              + e.getMessage(),
          e);
    }
  }

  /**
   * One custom object appeared or changed: parsed, resolved against the input-only records and
   * stored under its resource name; an input-only record is kept and re-derives every kind that
   * reads it. An invalid object is logged once per distinct problem and its last good version stays
   * (the CRD's schema rejects most mistakes at admission; what it cannot express, patterns and
   * CIDRs, is caught here). A valid object that is not ours (a route not attached to a Service) is
   * removed.
   */
  private <R> void changed(ResourceStore store, YamlKind<R> kind, HasMetadata r) {
    NamespacedName id = id(r);
    String what = kind.kind() + " " + id;
    List<String> errors = new ArrayList<>();
    R value = kind.parse("kubernetes", errors, tree(r), what);
    if (value == null) {
      if (!errors.isEmpty()) {
        problem(what, errors);
      } else if (kind.slot() instanceof ResourceKind<?, ?> wire) {
        store.remove(ResourceType.of(wire), kind.resourceName(id)); // not ours (any more)
      }
      return;
    }
    lastProblem.remove(what);
    if (kind.slot() instanceof ResourceKind<?, R> wire) {
      store.put(
          ResourceType.of(wire), kind.resourceName(id), wire.encode(wire.resolve(value, inputs)));
    } else if (kind.slot() instanceof InputSlot<R> input
        && !value.equals(
            inputValues.computeIfAbsent(input, k -> new HashMap<>()).put(key(r), value))) {
      rederive(store, input);
    }
  }

  private void gone(ResourceStore store, YamlKind<?> kind, HasMetadata r) {
    NamespacedName id = id(r);
    lastProblem.remove(kind.kind() + " " + id);
    if (kind.slot() instanceof ResourceKind<?, ?> wire) {
      store.remove(ResourceType.of(wire), kind.resourceName(id));
    } else if (kind.slot() instanceof InputSlot<?> input
        && inputValues.getOrDefault(input, new HashMap<>()).remove(key(r)) != null) {
      rederive(store, input);
    }
  }

  /** Every object of the kinds that read {@code input}, again from the informer caches. */
  private void rederive(ResourceStore store, InputSlot<?> input) {
    custom.forEach(
        (kind, informer) -> {
          if (kind.slot() instanceof ResourceKind<?, ?> wire && wire.inputs().contains(input)) {
            informer.getStore().list().forEach(r -> changed(store, kind, r));
          }
        });
  }

  private static NamespacedName id(HasMetadata o) {
    return new NamespacedName(o.getMetadata().getNamespace(), o.getMetadata().getName());
  }

  @Override
  public boolean ready() {
    if (informers.isEmpty()) {
      return false;
    }
    for (SharedIndexInformer<?> i : informers) {
      if (!i.hasSynced()) {
        return false;
      }
    }
    return true;
  }

  @Override
  public String describe() {
    return "kubernetes:" + client.getMasterUrl();
  }

  private static <T extends HasMetadata> ResourceEventHandler<T> handler(
      Executor executor, Consumer<T> changed, Consumer<T> gone) {
    return new ResourceEventHandler<>() {
      @Override
      public void onAdd(T obj) {
        executor.execute(() -> changed.accept(obj));
      }

      @Override
      public void onUpdate(T oldObj, T newObj) {
        executor.execute(() -> changed.accept(newObj));
      }

      @Override
      public void onDelete(T obj, boolean deletedFinalStateUnknown) {
        executor.execute(() -> gone.accept(obj));
      }
    };
  }

  private static String key(HasMetadata o) {
    return ResourceKinds.resourceName(o.getMetadata().getNamespace(), o.getMetadata().getName());
  }

  private void podChanged(ResourceStore store, Pod pod) {
    String name = key(pod);
    if (!KubernetesDerivations.isWorkload(pod)) {
      store.remove(ResourceType.WORKLOAD, name);
      return;
    }
    List<String> errors = new ArrayList<>();
    Workload w = ResourceKinds.Yaml.POD.parse("kubernetes", errors, tree(pod), "Pod " + name);
    if (w == null) {
      problem("Pod " + name, errors);
      return;
    }
    lastProblem.remove("Pod " + name);
    w = scope.apply(KubernetesDerivations.inZone(w, nodeZone(w.nodeName())));
    if (enrolments != null && w.captured() && !enrolledOnItsNode(pod)) {
      // In scope but never enrolled (running since before the install): nothing serves HBONE
      // for it, so other nodes reach it directly and its node's /ready does not wait for it.
      w = w.withCaptured(false);
    }
    store.put(
        ResourceType.WORKLOAD, name, WorkloadKind.encode(w, KubernetesDerivations.ready(pod)));
  }

  /** True when the pod's enrolment annotation names its own node. */
  static boolean enrolledOnItsNode(Pod pod) {
    String node = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    Map<String, String> annotations = pod.getMetadata().getAnnotations();
    return node != null
        && !node.isEmpty()
        && annotations != null
        && node.equals(annotations.get(ENROLLED_ANNOTATION));
  }

  /**
   * Brings the enrolment annotation of every pod on {@code node} in line with the node's latest
   * report (on the annotator thread). Only pods whose {@code spec.nodeName} is that node are
   * touched, so a report naming another node's pod changes nothing; a reported uid with no pod in
   * the cache yet is picked up by the node's next report. The annotation's change comes back
   * through the pod informer, which derives the workload again.
   */
  private void annotate(EnrolmentRegistry registry, String node) {
    SharedIndexInformer<Pod> p = pods;
    if (p == null) {
      return;
    }
    Set<String> reported = registry.of(node);
    int onNode = 0;
    for (Pod pod : p.getIndexer().byIndex(POD_NODE_INDEX, node)) {
      String uid = pod.getMetadata().getUid();
      boolean want = uid != null && reported.contains(uid);
      if (want) {
        onNode++;
      }
      if (want == enrolledOnItsNode(pod)) {
        continue;
      }
      // JSON merge patch: null removes the key.
      String value = want ? "\"" + node + "\"" : "null";
      String patch =
          "{\"metadata\":{\"annotations\":{\"" + ENROLLED_ANNOTATION + "\":" + value + "}}}";
      try {
        client
            .pods()
            .inNamespace(pod.getMetadata().getNamespace())
            .withName(pod.getMetadata().getName())
            .patch(PatchContext.of(PatchType.JSON_MERGE), patch);
      } catch (RuntimeException ex) {
        // The pod may be gone; otherwise the node's next report tries again.
        log.warn(
            "enrolment: marking pod {} {} failed: {}",
            key(pod),
            want ? "enrolled" : "not enrolled",
            ex.getMessage());
      }
    }
    if (onNode < reported.size()) {
      log.debug(
          "enrolment: node {} reports {} pods, {} of them known on it",
          node,
          reported.size(),
          onNode);
    }
  }

  /** The zone of a pod's node from the informer cache; empty when the node is unknown. */
  private String nodeZone(String nodeName) {
    SharedIndexInformer<Node> n = nodes;
    Node node = n == null || nodeName.isEmpty() ? null : n.getIndexer().getByKey(nodeName);
    return node == null ? "" : KubernetesDerivations.zoneOf(node);
  }

  /** A node appeared or changed: if its zone did, its pods' workloads are derived again. */
  private void nodeChanged(ResourceStore store, Node node) {
    String name = node.getMetadata().getName();
    String zone = KubernetesDerivations.zoneOf(node);
    if (!zone.equals(nodeZones.put(name, zone))) {
      rederivePodsOn(store, name);
    }
  }

  private void nodeGone(ResourceStore store, Node node) {
    String name = node.getMetadata().getName();
    if (nodeZones.remove(name) != null) {
      rederivePodsOn(store, name);
    }
  }

  private void rederivePodsOn(ResourceStore store, String nodeName) {
    SharedIndexInformer<Pod> p = pods;
    if (p == null) {
      return; // the pods' first list is still to come, and will see the node
    }
    for (Pod pod : p.getIndexer().byIndex(POD_NODE_INDEX, nodeName)) {
      podChanged(store, pod);
    }
  }

  private void podGone(ResourceStore store, Pod pod) {
    lastProblem.remove("Pod " + key(pod));
    store.remove(ResourceType.WORKLOAD, key(pod));
  }

  private void serviceChanged(ResourceStore store, Service svc) {
    String name = key(svc);
    List<String> errors = new ArrayList<>();
    MeshService s =
        ResourceKinds.Yaml.SERVICE.parse("kubernetes", errors, tree(svc), "Service " + name);
    if (s == null) {
      problem("Service " + name, errors);
      return;
    }
    lastProblem.remove("Service " + name);
    Set<String> uids = s.selector().isEmpty() ? endpointUids(svc) : Set.of();
    store.put(ResourceType.SERVICE, name, ServiceKind.encode(s, uids));
  }

  private void serviceGone(ResourceStore store, Service svc) {
    lastProblem.remove("Service " + key(svc));
    store.remove(ResourceType.SERVICE, key(svc));
  }

  /** A slice changed: re-derive its Service (only one without selector can change by it). */
  private void sliceChanged(ResourceStore store, EndpointSlice slice) {
    String svcName = KubernetesDerivations.serviceOf(slice);
    SharedIndexInformer<Service> svcs = services;
    if (svcName == null || svcs == null) {
      return;
    }
    Service svc = svcs.getIndexer().getByKey(slice.getMetadata().getNamespace() + "/" + svcName);
    if (svc != null) {
      serviceChanged(store, svc);
    }
  }

  /** The uids of the ready pods in the Service's EndpointSlices (informer cache). */
  private Set<String> endpointUids(Service svc) {
    SharedIndexInformer<EndpointSlice> s = slices;
    if (s == null) {
      return new TreeSet<>();
    }
    return KubernetesDerivations.readyPodUids(
        svc.getMetadata().getNamespace(), svc.getMetadata().getName(), s.getIndexer().list());
  }

  private JsonNode tree(HasMetadata o) {
    return client.getKubernetesSerialization().convertValue(o, JsonNode.class);
  }

  /** Logs a refused object once per distinct problem (resyncs repeat the same event). */
  private void problem(String what, List<String> errors) {
    String text = String.join("; ", errors);
    if (!Objects.equals(lastProblem.put(what, text), text)) {
      log.warn("{} refused, its last good version stays: {}", what, text);
    }
  }

  @Override
  public @Nullable EnrolmentRegistry enrolments() {
    return enrolments;
  }

  @Override
  public void close() {
    ExecutorService a = annotator;
    if (a != null) {
      a.shutdownNow();
    }
    RouteStatusWriter status = routeStatus;
    if (status != null) {
      status.close();
    }
    informers.forEach(SharedIndexInformer::close);
    // The required ones are in informers too.
    custom.forEach(
        (kind, informer) -> {
          if (!kind.required()) {
            informer.close();
          }
        });
  }
}
