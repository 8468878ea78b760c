package dev.nodemesh.model.config;

import java.net.InetAddress;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Everything the proxy routes by, frozen: one slot per resource kind ({@link #all}, keyed by the
 * kind's record type), and the indices the hot path uses (workload by IP, service by VIP and by
 * VIP:port, endpoints per service, routes and policies per service or namespace). Indices are built
 * once here so a lookup per connection is a hash probe. The constructor rejects inconsistent input
 * (duplicate names, IPs or VIPs) with {@link IllegalArgumentException}; {@code ConfigLoader}
 * reports the same problems earlier, with file names, so users never see that exception.
 *
 * <p>A kind with no index of its own needs nothing here: its records sit in their slot, read with
 * {@code snapshot.all(SomeKind.WIRE)}. The named accessors ({@link #workloads()}, {@link
 * #trafficPolicies()}...) are the same slots under the names the data plane already reads.
 */
public final class ConfigSnapshot {
  private static final ConfigSnapshot EMPTY = new ConfigSnapshot(0, List.of(), List.of());

  /**
   * What a slot of the snapshot is keyed by: one kind of record ({@code model.kind.ResourceKind} is
   * the one implementation the registry uses). Two kinds may not share a record type.
   *
   * @param <R> the record type of the slot
   */
  public interface Key<R> {
    Class<R> recordType();
  }

  /**
   * The mesh's root namespace: an AuthorizationPolicy here applies to every namespace, a
   * PeerAuthentication without selector here sets the mesh-wide mode.
   */
  public static final String ROOT_NAMESPACE = "nodemesh-system";

  private static final Comparator<AuthorizationPolicy> POLICY_ORDER =
      Comparator.comparing(AuthorizationPolicy::namespace).thenComparing(AuthorizationPolicy::name);
  private static final Comparator<PeerAuthentication> PEER_AUTHN_ORDER =
      Comparator.comparing(PeerAuthentication::namespace).thenComparing(PeerAuthentication::name);

  private static final Comparator<Workload> BY_NAME =
      Comparator.comparing(Workload::namespace).thenComparing(Workload::name);

  /** Key of the (vip, port) index; a record so equality is by value. */
  private record VipPort(InetAddress vip, int port) {}

  private final long version;

  /** Every kind's records by record type; a kind without records has no entry. */
  private final Map<Class<?>, List<?>> slots;

  private final List<Workload> workloads;
  private final List<MeshService> services;
  private final Map<InetAddress, Workload> workloadsByIp;
  private final Map<InetAddress, MeshService> servicesByVip;
  private final Map<VipPort, ServicePort> portsByVipPort;
  private final Map<NamespacedName, List<Workload>> endpoints;
  private final List<AuthorizationPolicy> authorizationPolicies;
  private final List<PeerAuthentication> peerAuthentications;
  private final Map<String, List<AuthorizationPolicy>> policiesByNamespace;
  private final Map<String, List<PeerAuthentication>> peerAuthnByNamespace;
  private final List<HttpRoute> httpRoutes;
  private final Map<NamespacedName, MeshService> servicesByName;
  private final Map<NamespacedName, ServiceRoutes> routesByService;
  private final List<TrafficPolicy> trafficPolicies;
  private final Map<NamespacedName, TrafficPolicy> trafficPolicyByService;
  private final List<HttpFault> httpFaults;
  private final Map<NamespacedName, HttpFault> faultsByName;
  private final java.util.Set<NamespacedName> l7AuthzWorkloads;
  private final java.util.Set<NamespacedName> l7AuthzServices;

  /** A snapshot built slot by slot; what the registry's {@code ResourceKinds.snapshot} uses. */
  public static Builder builder(long version) {
    return new Builder(version);
  }

  /** Collects each kind's records; {@link #build} checks and indexes them. */
  public static final class Builder {
    private final long version;
    private final Map<Class<?>, List<?>> slots = new HashMap<>();

    private Builder(long version) {
      this.version = version;
    }

    /**
     * The records of {@code key}'s kind (replacing any given before).
     *
     * @throws IllegalArgumentException when one is not of the key's record type
     */
    public <R> Builder put(Key<R> key, List<? extends R> records) {
      return put(key.recordType(), records);
    }

    private <R> Builder put(Class<R> type, List<? extends R> records) {
      for (R r : records) {
        if (!type.isInstance(r)) {
          throw new IllegalArgumentException("not a " + type.getSimpleName() + ": " + r);
        }
      }
      slots.put(type, List.copyOf(records));
      return this;
    }

    /**
     * @throws IllegalArgumentException when the records are inconsistent across kinds
     */
    public ConfigSnapshot build() {
      return new ConfigSnapshot(version, slots);
    }
  }

  public ConfigSnapshot(long version, List<Workload> workloads, List<MeshService> services) {
    this(version, workloads, services, List.of(), List.of(), List.of());
  }

  /** With HTTPRoutes and no policies. */
  public ConfigSnapshot(
      long version,
      List<Workload> workloads,
      List<MeshService> services,
      List<HttpRoute> httpRoutes) {
    this(version, workloads, services, List.of(), List.of(), httpRoutes);
  }

  /** With policies and no HTTPRoutes. */
  public ConfigSnapshot(
      long version,
      List<Workload> workloads,
      List<MeshService> services,
      List<AuthorizationPolicy> authorizationPolicies,
      List<PeerAuthentication> peerAuthentications) {
    this(version, workloads, services, authorizationPolicies, peerAuthentications, List.of());
  }

  /**
   * @param authorizationPolicies and {@code peerAuthentications}: kept sorted by namespace and
   *     name, indexed by namespace so a check reads only its destination's namespace and the root
   *     one
   * @param httpRoutes HTTPRoutes attached to Services; a route whose parent Service is absent is
   *     kept (it applies as soon as the Service appears) but routes nothing
   */
  public ConfigSnapshot(
      long version,
      List<Workload> workloads,
      List<MeshService> services,
      List<AuthorizationPolicy> authorizationPolicies,
      List<PeerAuthentication> peerAuthentications,
      List<HttpRoute> httpRoutes) {
    this(
        version,
        workloads,
        services,
        authorizationPolicies,
        peerAuthentications,
        httpRoutes,
        List.of(),
        List.of());
  }

  /**
   * @param httpRoutes HTTPRoutes and GRPCRoutes ({@link HttpRoute#grpc()})
   * @param httpFaults the HTTPFaults routes may name; a rule naming a missing one answers 500
   * @param trafficPolicies TrafficPolicies, kept sorted by namespace and name; at most one per
   *     target Service (else {@link IllegalArgumentException})
   */
  public ConfigSnapshot(
      long version,
      List<Workload> workloads,
      List<MeshService> services,
      List<AuthorizationPolicy> authorizationPolicies,
      List<PeerAuthentication> peerAuthentications,
      List<HttpRoute> httpRoutes,
      List<TrafficPolicy> trafficPolicies,
      List<HttpFault> httpFaults) {
    this(
        version,
        new Builder(version)
            .put(Workload.class, workloads)
            .put(MeshService.class, services)
            .put(AuthorizationPolicy.class, authorizationPolicies)
            .put(PeerAuthentication.class, peerAuthentications)
            .put(HttpRoute.class, httpRoutes)
            .put(TrafficPolicy.class, trafficPolicies)
            .put(HttpFault.class, httpFaults)
            .slots);
  }

  @SuppressWarnings("unchecked") // the builder put only Rs under R's class
  private static <R> List<R> slot(Map<Class<?>, List<?>> given, Class<R> type) {
    return (List<R>) given.getOrDefault(type, List.of());
  }

  private ConfigSnapshot(long version, Map<Class<?>, List<?>> given) {
    List<Workload> workloads = slot(given, Workload.class);
    List<MeshService> services = slot(given, MeshService.class);
    List<AuthorizationPolicy> authorizationPolicies = slot(given, AuthorizationPolicy.class);
    List<PeerAuthentication> peerAuthentications = slot(given, PeerAuthentication.class);
    List<HttpRoute> httpRoutes = slot(given, HttpRoute.class);
    List<TrafficPolicy> trafficPolicies = slot(given, TrafficPolicy.class);
    List<HttpFault> httpFaults = slot(given, HttpFault.class);
    this.version = version;
    this.workloads = List.copyOf(workloads);
    this.services = List.copyOf(services);
    this.httpRoutes = List.copyOf(httpRoutes);

    Map<InetAddress, Workload> byIp = new HashMap<>();
    Map<NamespacedName, Workload> byName = new HashMap<>();
    Map<String, List<Workload>> byNamespace = new HashMap<>();
    for (Workload w : this.workloads) {
      requireAbsent(byName.put(w.id(), w), "duplicate workload " + w.id());
      for (InetAddress ip : w.ips()) {
        requireAbsent(byIp.put(ip, w), "IP " + ip.getHostAddress() + " used twice");
      }
      byNamespace.computeIfAbsent(w.namespace(), ns -> new ArrayList<>()).add(w);
    }

    Map<InetAddress, MeshService> byVip = new HashMap<>();
    Map<VipPort, ServicePort> byVipPort = new HashMap<>();
    Map<NamespacedName, MeshService> servicesByName = new HashMap<>();
    Map<NamespacedName, List<Workload>> eps = new HashMap<>();
    for (MeshService s : this.services) {
      requireAbsent(servicesByName.put(s.id(), s), "duplicate service " + s.id());
      for (InetAddress vip : s.vips()) {
        requireAbsent(byVip.put(vip, s), "VIP " + vip.getHostAddress() + " used twice");
        requireAbsent(byIp.get(vip), "VIP " + vip.getHostAddress() + " is also a pod IP");
        for (ServicePort p : s.ports()) {
          requireAbsent(byVipPort.put(new VipPort(vip, p.port()), p), "duplicate port " + p);
        }
      }
      List<Workload> selected = new ArrayList<>();
      for (Workload w : byNamespace.getOrDefault(s.namespace(), List.of())) {
        if (s.selects(w)) {
          selected.add(w);
        }
      }
      // Sorted so that round-robin order, and so tests, do not depend on file order.
      selected.sort(BY_NAME);
      eps.put(s.id(), List.copyOf(selected));
    }
    this.workloadsByIp = Map.copyOf(byIp);
    this.servicesByVip = Map.copyOf(byVip);
    this.portsByVipPort = Map.copyOf(byVipPort);
    this.endpoints = Map.copyOf(eps);

    List<AuthorizationPolicy> policies = new ArrayList<>(authorizationPolicies);
    policies.sort(POLICY_ORDER);
    Map<NamespacedName, AuthorizationPolicy> policyNames = new HashMap<>();
    Map<String, List<AuthorizationPolicy>> policiesByNs = new HashMap<>();
    for (AuthorizationPolicy p : policies) {
      requireAbsent(policyNames.put(p.id(), p), "duplicate AuthorizationPolicy " + p.id());
      policiesByNs.computeIfAbsent(p.namespace(), ns -> new ArrayList<>()).add(p);
    }
    List<PeerAuthentication> peerAuthns = new ArrayList<>(peerAuthentications);
    peerAuthns.sort(PEER_AUTHN_ORDER);
    Map<NamespacedName, PeerAuthentication> peerAuthnNames = new HashMap<>();
    Map<String, List<PeerAuthentication>> peerAuthnByNs = new HashMap<>();
    for (PeerAuthentication p : peerAuthns) {
      requireAbsent(peerAuthnNames.put(p.id(), p), "duplicate PeerAuthentication " + p.id());
      peerAuthnByNs.computeIfAbsent(p.namespace(), ns -> new ArrayList<>()).add(p);
    }
    this.authorizationPolicies = List.copyOf(policies);
    this.peerAuthentications = List.copyOf(peerAuthns);
    this.policiesByNamespace = copyLists(policiesByNs);
    this.peerAuthnByNamespace = copyLists(peerAuthnByNs);
    this.servicesByName = Map.copyOf(servicesByName);

    Map<NamespacedName, List<HttpRouteEntry>> byService = new HashMap<>();
    java.util.Set<String> routeNames = new java.util.HashSet<>();
    for (HttpRoute r : this.httpRoutes) {
      if (!routeNames.add(r.kind() + " " + r.id())) {
        throw new IllegalArgumentException("duplicate " + r.kind() + " " + r.id());
      }
      for (HttpRoute.Parent parent : r.parents()) {
        List<HttpRouteEntry> entries =
            byService.computeIfAbsent(parent.service(), k -> new ArrayList<>());
        for (int i = 0; i < r.rules().size(); i++) {
          HttpRoute.Rule rule = r.rules().get(i);
          for (HttpRoute.Match m : rule.matches()) {
            entries.add(new HttpRouteEntry(r, parent.port(), i, rule, m, r.role(parent)));
          }
        }
      }
    }
    Map<NamespacedName, ServiceRoutes> sorted = new HashMap<>();
    byService.forEach(
        (svc, entries) -> {
          entries.sort(HttpRouteEntry.PRECEDENCE);
          sorted.put(svc, new ServiceRoutes(entries));
        });
    this.routesByService = Map.copyOf(sorted);

    List<TrafficPolicy> tps = new ArrayList<>(trafficPolicies);
    tps.sort(Comparator.comparing(TrafficPolicy::namespace).thenComparing(TrafficPolicy::name));
    Map<NamespacedName, TrafficPolicy> tpNames = new HashMap<>();
    Map<NamespacedName, TrafficPolicy> tpByService = new HashMap<>();
    for (TrafficPolicy tp : tps) {
      requireAbsent(tpNames.put(tp.id(), tp), "duplicate TrafficPolicy " + tp.id());
      requireAbsent(
          tpByService.put(tp.target(), tp), "two TrafficPolicies target Service " + tp.target());
    }
    this.trafficPolicies = List.copyOf(tps);
    this.trafficPolicyByService = Map.copyOf(tpByService);

    this.httpFaults = List.copyOf(httpFaults);
    Map<NamespacedName, HttpFault> faults = new HashMap<>();
    for (HttpFault f : this.httpFaults) {
      requireAbsent(faults.put(f.id(), f), "duplicate HTTPFault " + f.id());
    }
    this.faultsByName = Map.copyOf(faults);

    // Which workloads (and so which Services) have a policy with L7 rules: their traffic must
    // take the L7 path, where requests can be checked. Only L7 policies are scanned.
    java.util.Set<NamespacedName> l7Workloads = new java.util.HashSet<>();
    for (AuthorizationPolicy p : this.authorizationPolicies) {
      if (!p.hasL7Rules()) {
        continue;
      }
      List<Workload> scope =
          p.namespace().equals(ROOT_NAMESPACE)
              ? this.workloads
              : byNamespace.getOrDefault(p.namespace(), List.of());
      for (Workload w : scope) {
        if (p.selects(w)) {
          l7Workloads.add(w.id());
        }
      }
    }
    java.util.Set<NamespacedName> l7Services = new java.util.HashSet<>();
    if (!l7Workloads.isEmpty()) {
      eps.forEach(
          (svc, list) -> {
            for (Workload w : list) {
              if (l7Workloads.contains(w.id())) {
                l7Services.add(svc);
                break;
              }
            }
          });
    }
    this.l7AuthzWorkloads = java.util.Set.copyOf(l7Workloads);
    this.l7AuthzServices = java.util.Set.copyOf(l7Services);

    // The slots as the accessors return them (policies sorted); empty ones left out so that a
    // kind given no records and a kind not given at all are the same content.
    Map<Class<?>, List<?>> all = new HashMap<>(given);
    all.put(Workload.class, this.workloads);
    all.put(MeshService.class, this.services);
    all.put(AuthorizationPolicy.class, this.authorizationPolicies);
    all.put(PeerAuthentication.class, this.peerAuthentications);
    all.put(HttpRoute.class, this.httpRoutes);
    all.put(TrafficPolicy.class, this.trafficPolicies);
    all.put(HttpFault.class, this.httpFaults);
    all.values().removeIf(List::isEmpty);
    this.slots = Map.copyOf(all);
  }

  /** The records of {@code key}'s kind (its slot); empty when there are none. */
  @SuppressWarnings("unchecked") // the builder checked every record against its slot's type
  public <R> List<R> all(Key<R> key) {
    return (List<R>) slots.getOrDefault(key.recordType(), List.of());
  }

  /** The HTTPFaults, as given. */
  public List<HttpFault> httpFaults() {
    return httpFaults;
  }

  public @Nullable HttpFault httpFault(NamespacedName id) {
    return faultsByName.get(id);
  }

  /** True when an AuthorizationPolicy with L7 rules selects {@code workload}. */
  public boolean needsL7Authorization(Workload workload) {
    return l7AuthzWorkloads.contains(workload.id());
  }

  /** True when some endpoint of {@code service} has a policy with L7 rules. */
  public boolean needsL7Authorization(NamespacedName service) {
    return l7AuthzServices.contains(service);
  }

  private static <T> Map<String, List<T>> copyLists(Map<String, List<T>> byNamespace) {
    Map<String, List<T>> copy = new HashMap<>();
    byNamespace.forEach((ns, list) -> copy.put(ns, List.copyOf(list)));
    return Map.copyOf(copy);
  }

  private static void requireAbsent(@Nullable Object previous, String message) {
    if (previous != null) {
      throw new IllegalArgumentException(message);
    }
  }

  /** Version 0, nothing in the mesh: every destination passes through. */
  public static ConfigSnapshot empty() {
    return EMPTY;
  }

  /** The same content under another version number; indices are rebuilt (cheap, rare). */
  public ConfigSnapshot withVersion(long newVersion) {
    return new ConfigSnapshot(newVersion, slots);
  }

  /** The same content with {@code newWorkloads} instead of the workloads (same version). */
  public ConfigSnapshot withWorkloads(List<Workload> newWorkloads) {
    Map<Class<?>, List<?>> next = new HashMap<>(slots);
    next.put(Workload.class, List.copyOf(newWorkloads));
    return new ConfigSnapshot(version, next);
  }

  public long version() {
    return version;
  }

  public List<Workload> workloads() {
    return workloads;
  }

  public List<MeshService> services() {
    return services;
  }

  public List<HttpRoute> httpRoutes() {
    return httpRoutes;
  }

  /** Every TrafficPolicy, sorted by namespace then name. */
  public List<TrafficPolicy> trafficPolicies() {
    return trafficPolicies;
  }

  /** The TrafficPolicy targeting {@code service}, or null (defaults apply). */
  public @Nullable TrafficPolicy trafficPolicy(NamespacedName service) {
    return trafficPolicyByService.get(service);
  }

  public @Nullable MeshService serviceByName(NamespacedName id) {
    return servicesByName.get(id);
  }

  /**
   * Every route entry attached to {@code service}, producer and consumer routes of every namespace,
   * in precedence order, for any port. Not what one caller is routed by: that is {@link
   * #httpRoutes(NamespacedName, int, String)}. Empty when no route is attached.
   */
  public List<HttpRouteEntry> httpRoutes(NamespacedName service) {
    return routesByService.getOrDefault(service, ServiceRoutes.NONE).all();
  }

  /**
   * The route entries a workload in {@code callerNamespace} calling {@code service} on {@code port}
   * is routed by, in precedence order (GEP-1426 producer/consumer groups, see {@link
   * ServiceRoutes}); each covers the port. Empty: no route applies to this caller (the connection
   * stays L4 unless policy needs L7, and L7 sends every request to the Service itself).
   */
  public List<HttpRouteEntry> httpRoutes(NamespacedName service, int port, String callerNamespace) {
    return routesByService.getOrDefault(service, ServiceRoutes.NONE).select(callerNamespace, port);
  }

  /**
   * True when an HTTPRoute or GRPCRoute is attached to {@code service} on {@code port} (or every
   * port) for any caller. Routing decisions use {@link #hasHttpRoute(NamespacedName, int, String)}.
   */
  public boolean hasHttpRoute(NamespacedName service, int port) {
    for (HttpRouteEntry e : httpRoutes(service)) {
      if (e.port() == 0 || e.port() == port) {
        return true;
      }
    }
    return false;
  }

  /** True when some route applies to a call from {@code callerNamespace} to this Service port. */
  public boolean hasHttpRoute(NamespacedName service, int port, String callerNamespace) {
    return !httpRoutes(service, port, callerNamespace).isEmpty();
  }

  public @Nullable Workload workloadByIp(InetAddress ip) {
    return workloadsByIp.get(ip);
  }

  public @Nullable MeshService serviceByVip(InetAddress vip) {
    return servicesByVip.get(vip);
  }

  /** The service port listening on {@code vip:port}, or null. */
  public @Nullable ServicePort servicePort(InetAddress vip, int port) {
    return portsByVipPort.get(new VipPort(vip, port));
  }

  /** The workloads selected by {@code service}, sorted by namespace then name; empty if none. */
  public List<Workload> endpoints(MeshService service) {
    return endpoints.getOrDefault(service.id(), List.of());
  }

  /** Every AuthorizationPolicy, sorted by namespace then name. */
  public List<AuthorizationPolicy> authorizationPolicies() {
    return authorizationPolicies;
  }

  /** The AuthorizationPolicies of one namespace, sorted by name; empty if none. */
  public List<AuthorizationPolicy> authorizationPolicies(String namespace) {
    return policiesByNamespace.getOrDefault(namespace, List.of());
  }

  /** Every PeerAuthentication, sorted by namespace then name. */
  public List<PeerAuthentication> peerAuthentications() {
    return peerAuthentications;
  }

  /** The PeerAuthentications of one namespace, sorted by name; empty if none. */
  public List<PeerAuthentication> peerAuthentications(String namespace) {
    return peerAuthnByNamespace.getOrDefault(namespace, List.of());
  }

  /**
   * The PeerAuthentication in force for {@code workload}: one with a matching selector in its
   * namespace, else its namespace's selector-less one, else the root namespace's selector-less one.
   * Ties at one level go to the smallest name (the snapshot keeps them sorted). Null: none applies,
   * so PERMISSIVE.
   */
  public @Nullable PeerAuthentication peerAuthenticationFor(Workload workload) {
    PeerAuthentication namespaceWide = null;
    for (PeerAuthentication p : peerAuthentications(workload.namespace())) {
      var selector = p.selector();
      if (selector == null) {
        if (namespaceWide == null) {
          namespaceWide = p;
        }
      } else if (workload.labels().entrySet().containsAll(selector.entrySet())) {
        return p;
      }
    }
    if (namespaceWide != null) {
      return namespaceWide;
    }
    for (PeerAuthentication p : peerAuthentications(ConfigSnapshot.ROOT_NAMESPACE)) {
      if (p.selector() == null) {
        return p;
      }
    }
    return null;
  }

  /**
   * The uncaptured workloads a STRICT PeerAuthentication covers: nothing can enforce mTLS for them
   * (no proxy serves them; other nodes reach them in plaintext), so the operator must hear of it.
   */
  public List<NamespacedName> uncapturedUnderStrict() {
    List<NamespacedName> out = new ArrayList<>();
    for (Workload w : workloads) {
      PeerAuthentication p = w.captured() ? null : peerAuthenticationFor(w);
      if (p != null && p.mode() == PeerAuthentication.Mode.STRICT) {
        out.add(w.id());
      }
    }
    return out;
  }

  /** True when both hold the same resources, whatever their versions. */
  public boolean sameContent(ConfigSnapshot other) {
    return slots.equals(other.slots);
  }

  /** One line for logs: version and counts. */
  public String describe() {
    int endpointCount = 0;
    for (List<Workload> e : endpoints.values()) {
      endpointCount += e.size();
    }
    String policies =
        authorizationPolicies.isEmpty() && peerAuthentications.isEmpty()
            ? ""
            : ", "
                + authorizationPolicies.size()
                + " authorization policies, "
                + peerAuthentications.size()
                + " peer authentications";
    return "config version "
        + version
        + ": "
        + workloads.size()
        + " workloads, "
        + services.size()
        + " services, "
        + endpointCount
        + " service endpoints"
        + policies
        + (httpRoutes.isEmpty() ? "" : ", " + httpRoutes.size() + " HTTP routes")
        + (trafficPolicies.isEmpty() ? "" : ", " + trafficPolicies.size() + " traffic policies");
  }

  @Override
  public String toString() {
    return describe();
  }
}
