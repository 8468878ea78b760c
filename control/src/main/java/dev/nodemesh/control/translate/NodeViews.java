package dev.nodemesh.control.translate;

import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.StoreSnapshot;
import dev.nodemesh.control.store.VersionedResource;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;

/**
 * What each node proxy is sent, computed from one store snapshot. A node gets every Service and
 * every HTTPRoute (any pod on it may call any of them), every workload that is an endpoint of some
 * Service (to route there), and every workload on the node itself (inbound traffic and pod
 * identity). A pod on another node that no Service selects is left out: nothing on this node can
 * route to it by name, and its traffic arrives through a tunnel that carries its identity. Every
 * resource of every other kind of the registry (AuthorizationPolicies, PeerAuthentications,
 * TrafficPolicies, HTTPFaults...) goes to every node: a node must know every policy that can select
 * its own workloads, and any pod may call any Service or route they shape. Narrowing to the
 * namespaces a node hosts is a later optimisation.
 *
 * <p>The node-independent part is computed once per snapshot and shared, not copied, by every
 * node's view (a node's own workloads are layered on top), so memory grows with resources plus
 * nodes, not their product. Pure: no I/O, no clock. Views are read-only.
 */
public final class NodeViews {
  private final StoreSnapshot snapshot;
  private final Map<String, VersionedResource> sharedWorkloads;
  private final Map<String, Map<String, VersionedResource>> workloadsByNode;
  private final List<String> conflicts;
  private final long id = IDS.incrementAndGet();
  private long previousId = -1;
  private Map<ResourceType, Set<String>> changedShared = Map.of();

  private static final AtomicLong IDS = new AtomicLong();

  private NodeViews(
      StoreSnapshot snapshot,
      Map<String, VersionedResource> sharedWorkloads,
      Map<String, Map<String, VersionedResource>> workloadsByNode,
      List<String> conflicts) {
    this.snapshot = snapshot;
    this.sharedWorkloads = sharedWorkloads;
    this.workloadsByNode = workloadsByNode;
    this.conflicts = conflicts;
  }

  /**
   * Like {@link #of(StoreSnapshot)}, and also records which names of the node-independent part
   * differ from {@code previous}, so a stream that holds exactly {@code previous} compares only
   * those (and its own workloads) instead of its whole view. No reference to {@code previous} is
   * kept.
   */
  public static NodeViews of(StoreSnapshot snapshot, @Nullable NodeViews previous) {
    NodeViews next = of(snapshot);
    if (previous != null) {
      next.previousId = previous.id;
      Map<ResourceType, Set<String>> changed = ResourceType.newMap();
      for (ResourceType type : ResourceType.values()) {
        changed.put(type, changedNames(previous.shared(type), next.shared(type)));
      }
      next.changedShared = changed;
    }
    return next;
  }

  private static Set<String> changedNames(
      Map<String, VersionedResource> before, Map<String, VersionedResource> after) {
    Set<String> changed = new HashSet<>();
    after.forEach(
        (name, r) -> {
          VersionedResource old = before.get(name);
          if (old == null || !old.version().equals(r.version())) {
            changed.add(name);
          }
        });
    for (String name : before.keySet()) {
      if (!after.containsKey(name)) {
        changed.add(name);
      }
    }
    return changed;
  }

  /** Identifies this view set; {@link #previousId()} names the one it was diffed against. */
  public long id() {
    return id;
  }

  public long previousId() {
    return previousId;
  }

  /**
   * The names of {@code type} that may differ for a node holding the previous views' map: changes
   * of the shared part plus the node's own workloads before and after ({@code heldView} is the map
   * the node holds, from the previous views).
   */
  public Set<String> candidates(ResourceType type, String node, Map<String, ?> heldView) {
    Set<String> names = new HashSet<>(changedShared.getOrDefault(type, Set.of()));
    if (type == ResourceType.WORKLOAD) {
      names.addAll(workloadsByNode.getOrDefault(node, Map.of()).keySet());
      if (heldView instanceof UnionMap<?> union) {
        names.addAll(union.ownKeys());
      }
    }
    return names;
  }

  public static NodeViews of(StoreSnapshot snapshot) {
    // Selectors by namespace, so each workload is matched only against its namespace's services.
    Map<String, Set<Map<String, String>>> selectors = new HashMap<>();
    Set<String> listedUids = new HashSet<>();
    for (VersionedResource r : snapshot.of(ResourceType.SERVICE).values()) {
      Service s = (Service) r.message();
      switch (s.getEndpointsCase()) {
        case SELECTOR ->
            selectors
                .computeIfAbsent(s.getNamespace(), ns -> new HashSet<>())
                .add(s.getSelector().getMatchLabelsMap());
        case ENDPOINT_LIST -> listedUids.addAll(s.getEndpointList().getWorkloadUidsList());
        case ENDPOINTS_NOT_SET -> {}
      }
    }
    List<String> conflicts = new ArrayList<>();
    Set<String> excluded = conflicting(snapshot, conflicts);
    Map<String, VersionedResource> shared = new HashMap<>();
    Map<String, Map<String, VersionedResource>> byNode = new HashMap<>();
    for (VersionedResource r : snapshot.of(ResourceType.WORKLOAD).values()) {
      Workload w = (Workload) r.message();
      if (excluded.contains(r.name())) {
        continue;
      }
      if (listedUids.contains(w.getUid()) || selected(w, selectors)) {
        shared.put(r.name(), r);
      } else {
        byNode.computeIfAbsent(w.getNode(), n -> new HashMap<>()).put(r.name(), r);
      }
    }
    return new NodeViews(snapshot, Map.copyOf(shared), byNode, List.copyOf(conflicts));
  }

  /**
   * Workloads left out because their IP is taken: by another workload (Kubernetes can hand a
   * terminating pod's IP to a new pod before the old object is gone) or by a Service VIP. A node
   * proxy refuses a config with a duplicate IP as a whole, so sending both would stall every node's
   * updates; leaving one out keeps the rest flowing. The ready one wins, then the smaller name.
   */
  private static Set<String> conflicting(StoreSnapshot snapshot, List<String> conflicts) {
    Set<String> vips = new HashSet<>();
    for (VersionedResource r : snapshot.of(ResourceType.SERVICE).values()) {
      vips.addAll(((Service) r.message()).getVipsList());
    }
    List<VersionedResource> workloads =
        new ArrayList<>(snapshot.of(ResourceType.WORKLOAD).values());
    workloads.sort(
        Comparator.comparing((VersionedResource r) -> !((Workload) r.message()).getReady())
            .thenComparing(VersionedResource::name));
    Map<String, String> owner = new HashMap<>();
    Set<String> excluded = new HashSet<>();
    for (VersionedResource r : workloads) {
      for (String ip : ((Workload) r.message()).getIpsList()) {
        String other = vips.contains(ip) ? "a Service VIP" : owner.putIfAbsent(ip, r.name());
        if (other != null && !other.equals(r.name())) {
          excluded.add(r.name());
          conflicts.add("Workload " + r.name() + " left out: IP " + ip + " is already " + other);
          break;
        }
      }
    }
    return excluded;
  }

  /** Why workloads were left out of every view (empty when none was); for logs. */
  public List<String> conflicts() {
    return conflicts;
  }

  private static boolean selected(Workload w, Map<String, Set<Map<String, String>>> selectors) {
    Map<String, String> labels = w.getLabelsMap();
    for (Map<String, String> sel : selectors.getOrDefault(w.getNamespace(), Set.of())) {
      if (!sel.isEmpty() && labels.entrySet().containsAll(sel.entrySet())) {
        return true;
      }
    }
    return false;
  }

  public StoreSnapshot snapshot() {
    return snapshot;
  }

  /** The resources {@code node} should hold, by type and name. */
  public Map<ResourceType, Map<String, VersionedResource>> forNode(String node) {
    Map<ResourceType, Map<String, VersionedResource>> view = ResourceType.newMap();
    for (ResourceType type : ResourceType.values()) {
      view.put(type, shared(type));
    }
    Map<String, VersionedResource> own = workloadsByNode.getOrDefault(node, Map.of());
    if (!own.isEmpty()) {
      view.put(ResourceType.WORKLOAD, new UnionMap<>(sharedWorkloads, own));
    }
    return view;
  }

  /**
   * What every node gets of {@code type}: of workloads, the endpoints of some Service; of every
   * other kind (Services, routes, policies, faults), all of it.
   */
  private Map<String, VersionedResource> shared(ResourceType type) {
    return type == ResourceType.WORKLOAD ? sharedWorkloads : snapshot.of(type);
  }
}
