package dev.nodemesh.control.source;

import com.fasterxml.jackson.databind.JsonNode;
import com.google.protobuf.Message;
import dev.nodemesh.control.status.RouteStatusWriter;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.ResourceParser;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.TrafficPolicyParser;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.proto.ProtoEncoder;
import io.fabric8.kubernetes.api.model.GenericKubernetesResource;
import io.fabric8.kubernetes.api.model.HasMetadata;
import io.fabric8.kubernetes.api.model.Namespace;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.Service;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import io.fabric8.kubernetes.client.dsl.base.ResourceDefinitionContext;
import io.fabric8.kubernetes.client.informers.ResourceEventHandler;
import io.fabric8.kubernetes.client.informers.SharedIndexInformer;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.Executor;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The cluster as a source: fabric8 shared informers on Pods, Services, EndpointSlices, Namespaces,
 * and the mesh's AuthorizationPolicy and PeerAuthentication CRDs, in every namespace, and Gateway
 * API HTTPRoutes, GRPCRoutes and ReferenceGrants and the mesh's TrafficPolicies and HTTPFaults (as
 * generic resources) when their CRDs are installed, and Nodes for their zones. The informers list,
 * watch, re-list when a watch expires, and resync every {@code resyncMillis}; events are only
 * hopped onto the control-plane executor, where each object is turned into its resource. A resync
 * or relist that changes nothing is invisible downstream, because the store versions resources by
 * content.
 *
 * <p>Pods and Services are validated by the node proxy's own {@link ResourceParser} (the object is
 * turned into the same JSON tree YAML gives), so both sources accept exactly the same objects. An
 * object that fails is logged once per distinct problem and its last good resource stays. A pod
 * without an IP yet, finished (Succeeded/Failed, whose IP may already be reused), or on the host
 * network (its IP is the node's, shared with every other such pod; it is not meshed) is not a
 * workload. EndpointSlices matter only for Services without a selector (their endpoints become
 * workload uids); with a selector, readiness travels on the Workload so one pod change stays one
 * resource. Namespaces are watched so readiness waits for them; the authorization issue will use
 * their labels.
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
  private @Nullable SharedIndexInformer<GenericKubernetesResource> routeInformer;
  private @Nullable SharedIndexInformer<GenericKubernetesResource> trafficInformer;
  private @Nullable SharedIndexInformer<GenericKubernetesResource> grpcRouteInformer;
  private @Nullable SharedIndexInformer<GenericKubernetesResource> faultInformer;
  private @Nullable SharedIndexInformer<GenericKubernetesResource> grantInformer;
  // The valid ReferenceGrants by namespace/name (control-plane executor only).
  private final Map<String, ReferenceGrant> grants = new HashMap<>();
  private static final String GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1";

  private final @Nullable RouteStatusWriter routeStatus;
  private final CaptureScope scope;

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
    this.client = client;
    this.resyncMillis = resyncMillis;
    this.routeStatus = routeStatus;
    this.scope = scope;
  }

  static final ResourceDefinitionContext HTTP_ROUTES = gatewayApi("HTTPRoute", "httproutes");
  static final ResourceDefinitionContext GRPC_ROUTES = gatewayApi("GRPCRoute", "grpcroutes");

  private static ResourceDefinitionContext gatewayApi(String kind, String plural) {
    return new ResourceDefinitionContext.Builder()
        .withGroup("gateway.networking.k8s.io")
        .withVersion("v1")
        .withKind(kind)
        .withPlural(plural)
        .withNamespaced(true)
        .build();
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
    // ReferenceGrants before the routes, so their list is usually in before the first route is
    // derived (routes are not waited for either; a route derived first is derived again).
    SharedIndexInformer<GenericKubernetesResource> grantsInformer =
        referenceGrantInformer(executor, store);
    grantInformer = grantsInformer;
    // HTTPRoutes through the generic client: the Gateway API CRDs may not be installed, so this
    // informer is started without waiting and does not hold back readiness.
    SharedIndexInformer<GenericKubernetesResource> routes =
        client
            .genericKubernetesResources(GATEWAY_API_VERSION, "HTTPRoute")
            .inAnyNamespace()
            .runnableInformer(resyncMillis);
    routes.addEventHandler(
        handler(executor, r -> routeChanged(store, r), r -> routeGone(store, r)));
    routeInformer = routes;
    trafficInformer = trafficPolicyInformer(executor, store);
    SharedIndexInformer<GenericKubernetesResource> grpcRoutes = grpcRouteInformer(executor, store);
    grpcRouteInformer = grpcRoutes;
    faultInformer = httpFaultInformer(executor, store);
    RouteStatusWriter status = routeStatus;
    if (status != null) {
      status.watchRoutes("HTTPRoute", HTTP_ROUTES, routes);
      status.watchRoutes("GRPCRoute", GRPC_ROUTES, grpcRoutes);
      status.watchReferenceGrants(grantsInformer);
      status.watchServices(svcInformer);
      status.start();
    }
    routes
        .start()
        .exceptionally(
            e -> {
              log.warn("HTTPRoutes are not watched (Gateway API CRDs missing?): {}", e.toString());
              return null;
            });
    informers.add(
        client
            .namespaces()
            .inform(handler(executor, (Namespace n) -> {}, (Namespace n) -> {}), resyncMillis));
    informers.add(
        policyInformer(
            executor,
            "AuthorizationPolicy",
            "authorizationpolicies",
            ResourceType.AUTHORIZATION_POLICY,
            (parser, doc, label) -> {
              AuthorizationPolicy p = parser.authorizationPolicy(doc, label);
              return p == null ? null : ProtoEncoder.authorizationPolicy(p);
            },
            store));
    informers.add(
        policyInformer(
            executor,
            "PeerAuthentication",
            "peerauthentications",
            ResourceType.PEER_AUTHENTICATION,
            (parser, doc, label) -> {
              PeerAuthentication p = parser.peerAuthentication(doc, label);
              return p == null ? null : ProtoEncoder.peerAuthentication(p);
            },
            store));
  }

  /**
   * TrafficPolicies ({@code traffic.nodemesh.dev/v1alpha1}), validated by the proxy's own parser.
   * Like HTTPRoutes, started without waiting: a cluster without the CRD still gets a control plane.
   */
  private SharedIndexInformer<GenericKubernetesResource> trafficPolicyInformer(
      Executor executor, ResourceStore store) {
    return optionalInformer(
        "traffic.nodemesh.dev",
        "v1alpha1",
        "TrafficPolicy",
        "trafficpolicies",
        handler(
            executor,
            r -> {
              String name = key(r);
              List<String> errors = new ArrayList<>();
              TrafficPolicy p =
                  new TrafficPolicyParser("kubernetes", errors)
                      .parse(tree(r), "TrafficPolicy " + name);
              if (p == null) {
                problem("TrafficPolicy " + name, errors);
                return;
              }
              lastProblem.remove("TrafficPolicy " + name);
              store.put(ResourceType.TRAFFIC_POLICY, name, ProtoEncoder.trafficPolicy(p));
            },
            r -> {
              lastProblem.remove("TrafficPolicy " + key(r));
              store.remove(ResourceType.TRAFFIC_POLICY, key(r));
            }));
  }

  /**
   * Gateway API GRPCRoutes, validated by the proxy's own parser and sent as {@code HttpRoute}
   * resources with {@code grpc} set, under {@link ProtoEncoder#routeName} so a GRPCRoute and an
   * HTTPRoute of the same name do not replace each other. Optional like HTTPRoutes: GRPCRoute is in
   * the Gateway API standard channel since v1.1, older installs lack it.
   */
  private SharedIndexInformer<GenericKubernetesResource> grpcRouteInformer(
      Executor executor, ResourceStore store) {
    return optionalInformer(
        "gateway.networking.k8s.io",
        "v1",
        "GRPCRoute",
        "grpcroutes",
        handler(
            executor,
            r -> grpcRouteChanged(store, r),
            r -> {
              lastProblem.remove("GRPCRoute " + key(r));
              store.remove(ResourceType.HTTP_ROUTE, grpcRouteName(r));
            }));
  }

  private void grpcRouteChanged(ResourceStore store, GenericKubernetesResource r) {
    String label = "GRPCRoute " + key(r);
    String name = grpcRouteName(r);
    List<String> errors = new ArrayList<>();
    HttpRoute route = new ResourceParser("kubernetes", errors).grpcRoute(tree(r), label);
    if (route == null) {
      if (!errors.isEmpty()) {
        problem(label, errors);
      } else {
        store.remove(ResourceType.HTTP_ROUTE, name); // not attached to a Service
      }
      return;
    }
    lastProblem.remove(label);
    store.put(
        ResourceType.HTTP_ROUTE,
        name,
        ProtoEncoder.httpRoute(ReferenceGrant.apply(route, grants.values())));
  }

  /**
   * Gateway API ReferenceGrants ({@code v1beta1}), validated by the proxy's own parser. Optional
   * like the routes. A grant that changes re-derives every route, whose cross-namespace backendRefs
   * are checked against the grants before they are pushed (so proxies need no grants of their own).
   */
  private SharedIndexInformer<GenericKubernetesResource> referenceGrantInformer(
      Executor executor, ResourceStore store) {
    return optionalInformer(
        ReferenceGrant.GATEWAY_GROUP,
        "v1beta1",
        "ReferenceGrant",
        "referencegrants",
        handler(
            executor,
            r -> {
              String name = key(r);
              List<String> errors = new ArrayList<>();
              ReferenceGrant g =
                  new ResourceParser("kubernetes", errors)
                      .referenceGrant(tree(r), "ReferenceGrant " + name);
              if (g == null) {
                problem("ReferenceGrant " + name, errors);
                return;
              }
              lastProblem.remove("ReferenceGrant " + name);
              if (!g.equals(grants.put(name, g))) {
                rederiveRoutes(store);
              }
            },
            r -> {
              lastProblem.remove("ReferenceGrant " + key(r));
              if (grants.remove(key(r)) != null) {
                rederiveRoutes(store);
              }
            }));
  }

  /** Every route again from the informer caches (a grant changed). */
  private void rederiveRoutes(ResourceStore store) {
    SharedIndexInformer<GenericKubernetesResource> http = routeInformer;
    if (http != null) {
      http.getStore().list().forEach(r -> routeChanged(store, r));
    }
    SharedIndexInformer<GenericKubernetesResource> grpc = grpcRouteInformer;
    if (grpc != null) {
      grpc.getStore().list().forEach(r -> grpcRouteChanged(store, r));
    }
  }

  private static String grpcRouteName(HasMetadata r) {
    return ProtoEncoder.routeName(r.getMetadata().getNamespace(), r.getMetadata().getName(), true);
  }

  /**
   * HTTPFaults ({@code traffic.nodemesh.dev/v1alpha1}), validated by the proxy's own parser. Like
   * TrafficPolicies, started without waiting: a cluster without the CRD still gets a control plane
   * (a route naming a fault then answers 500, as it does for any missing fault).
   */
  private SharedIndexInformer<GenericKubernetesResource> httpFaultInformer(
      Executor executor, ResourceStore store) {
    return optionalInformer(
        "traffic.nodemesh.dev",
        "v1alpha1",
        "HTTPFault",
        "httpfaults",
        handler(
            executor,
            r -> {
              String name = key(r);
              List<String> errors = new ArrayList<>();
              HttpFault f =
                  new ResourceParser("kubernetes", errors).httpFault(tree(r), "HTTPFault " + name);
              if (f == null) {
                problem("HTTPFault " + name, errors);
                return;
              }
              lastProblem.remove("HTTPFault " + name);
              store.put(ResourceType.HTTP_FAULT, name, ProtoEncoder.httpFault(f));
            },
            r -> {
              lastProblem.remove("HTTPFault " + key(r));
              store.remove(ResourceType.HTTP_FAULT, key(r));
            }));
  }

  /**
   * An informer on an optional custom resource kind, started without waiting: a cluster without the
   * CRD still gets a control plane, and the failed list is logged once.
   */
  private SharedIndexInformer<GenericKubernetesResource> optionalInformer(
      String group,
      String version,
      String kind,
      String plural,
      ResourceEventHandler<GenericKubernetesResource> handler) {
    SharedIndexInformer<GenericKubernetesResource> i =
        client
            .genericKubernetesResources(
                new ResourceDefinitionContext.Builder()
                    .withGroup(group)
                    .withVersion(version)
                    .withKind(kind)
                    .withPlural(plural)
                    .withNamespaced(true)
                    .build())
            .inAnyNamespace()
            .runnableInformer(resyncMillis);
    i.addEventHandler(handler);
    i.start()
        .exceptionally(
            e -> {
              log.warn("{} ({}) are not watched (CRD missing?): {}", plural, group, e.toString());
              return null;
            });
    return i;
  }

  /** Parses one custom resource's JSON tree; null after recording why it is invalid. */
  @FunctionalInterface
  private interface CustomParser {
    @Nullable Message parse(ResourceParser parser, JsonNode doc, String label);
  }

  /**
   * An informer on one of the mesh's CRDs (security.nodemesh.dev/v1alpha1), as fabric8 generic
   * resources: the objects are validated by the same parser as local YAML. Without the CRDs
   * installed ({@code deploy/crds/}) the initial list fails and the control plane does not start,
   * rather than running with policy silently ignored.
   */
  private SharedIndexInformer<GenericKubernetesResource> policyInformer(
      Executor executor,
      String kind,
      String plural,
      ResourceType type,
      CustomParser parse,
      ResourceStore store) {
    ResourceDefinitionContext context =
        new ResourceDefinitionContext.Builder()
            .withGroup(SECURITY_GROUP)
            .withVersion(SECURITY_VERSION)
            .withKind(kind)
            .withPlural(plural)
            .withNamespaced(true)
            .build();
    try {
      return client
          .genericKubernetesResources(context)
          .inAnyNamespace()
          .inform(
              handler(
                  executor,
                  r -> customChanged(store, type, kind, r, parse),
                  r -> {
                    lastProblem.remove(kind + " " + key(r));
                    store.remove(type, key(r));
                  }),
              resyncMillis);
    } catch (KubernetesClientException e) {
      throw new IllegalStateException(
          "cannot watch "
              + plural
              + "."
              + SECURITY_GROUP
              + " (are the CRDs in deploy/crds installed?): "
              + e.getMessage(),
          e);
    }
  }

  private void customChanged(
      ResourceStore store,
      ResourceType type,
      String kind,
      GenericKubernetesResource r,
      CustomParser parse) {
    String name = key(r);
    List<String> errors = new ArrayList<>();
    Message m = parse.parse(new ResourceParser("kubernetes", errors), tree(r), kind + " " + name);
    if (m == null) {
      // The CRD's schema rejects most mistakes at admission; what it cannot express (patterns,
      // CIDRs) is caught here, and the last good version stays.
      problem(kind + " " + name, errors);
      return;
    }
    lastProblem.remove(kind + " " + name);
    store.put(type, name, m);
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
    return ProtoEncoder.name(o.getMetadata().getNamespace(), o.getMetadata().getName());
  }

  private void podChanged(ResourceStore store, Pod pod) {
    String name = key(pod);
    if (!KubernetesDerivations.isWorkload(pod)) {
      store.remove(ResourceType.WORKLOAD, name);
      return;
    }
    List<String> errors = new ArrayList<>();
    Workload w = new ResourceParser("kubernetes", errors).pod(tree(pod), "Pod " + name);
    if (w == null) {
      problem("Pod " + name, errors);
      return;
    }
    lastProblem.remove("Pod " + name);
    w = scope.apply(KubernetesDerivations.inZone(w, nodeZone(w.nodeName())));
    store.put(
        ResourceType.WORKLOAD, name, ProtoEncoder.workload(w, KubernetesDerivations.ready(pod)));
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
    MeshService s = new ResourceParser("kubernetes", errors).service(tree(svc), "Service " + name);
    if (s == null) {
      problem("Service " + name, errors);
      return;
    }
    lastProblem.remove("Service " + name);
    Set<String> uids = s.selector().isEmpty() ? endpointUids(svc) : Set.of();
    store.put(ResourceType.SERVICE, name, ProtoEncoder.service(s, uids));
  }

  private void serviceGone(ResourceStore store, Service svc) {
    lastProblem.remove("Service " + key(svc));
    store.remove(ResourceType.SERVICE, key(svc));
  }

  private void routeChanged(ResourceStore store, GenericKubernetesResource route) {
    String name = key(route);
    List<String> errors = new ArrayList<>();
    HttpRoute r =
        new ResourceParser("kubernetes", errors).httpRoute(tree(route), "HTTPRoute " + name);
    if (r == null) {
      if (!errors.isEmpty()) {
        problem("HTTPRoute " + name, errors);
      } else {
        store.remove(ResourceType.HTTP_ROUTE, name); // not attached to a Service (any more)
      }
      return;
    }
    lastProblem.remove("HTTPRoute " + name);
    store.put(
        ResourceType.HTTP_ROUTE,
        name,
        ProtoEncoder.httpRoute(ReferenceGrant.apply(r, grants.values())));
  }

  private void routeGone(ResourceStore store, GenericKubernetesResource route) {
    lastProblem.remove("HTTPRoute " + key(route));
    store.remove(ResourceType.HTTP_ROUTE, key(route));
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
  public void close() {
    RouteStatusWriter status = routeStatus;
    if (status != null) {
      status.close();
    }
    informers.forEach(SharedIndexInformer::close);
    SharedIndexInformer<GenericKubernetesResource> r = routeInformer;
    if (r != null) {
      r.close();
    }
    closeIfStarted(trafficInformer);
    closeIfStarted(grpcRouteInformer);
    closeIfStarted(grantInformer);
    closeIfStarted(faultInformer);
  }

  private static void closeIfStarted(@Nullable SharedIndexInformer<?> informer) {
    if (informer != null) {
      informer.close();
    }
  }
}
