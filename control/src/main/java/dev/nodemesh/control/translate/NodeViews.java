package dev.nodemesh.control.translate;

import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.StoreSnapshot;
import dev.nodemesh.control.store.VersionedResource;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;

/**
 * What each node proxy is sent, computed from one store snapshot. A node gets every Service (any
 * pod on it may call any of them), every workload that is an endpoint of some Service (to route
 * there), and every workload on the node itself (inbound traffic and pod identity). A pod on
 * another node that no Service selects is left out: nothing on this node can route to it by name,
 * and its traffic arrives through a tunnel that carries its identity.
 *
 * <p>The node-independent part is computed once per snapshot and shared, not copied, by every
 * node's view (a node's own workloads are layered on top), so memory grows with resources plus
 * nodes, not their product. Pure: no I/O, no clock. Views are read-only.
 */
public final class NodeViews {
  private final StoreSnapshot snapshot;
  private final Map<String, VersionedResource> sharedWorkloads;
  private final Map<String, Map<String, VersionedResource>> workloadsByNode;

  private NodeViews(
      StoreSnapshot snapshot,
      Map<String, VersionedResource> sharedWorkloads,
      Map<String, Map<String, VersionedResource>> workloadsByNode) {
    this.snapshot = snapshot;
    this.sharedWorkloads = sharedWorkloads;
    this.workloadsByNode = workloadsByNode;
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
    Map<String, VersionedResource> shared = new HashMap<>();
    Map<String, Map<String, VersionedResource>> byNode = new HashMap<>();
    for (VersionedResource r : snapshot.of(ResourceType.WORKLOAD).values()) {
      Workload w = (Workload) r.message();
      if (listedUids.contains(w.getUid()) || selected(w, selectors)) {
        shared.put(r.name(), r);
      } else {
        byNode.computeIfAbsent(w.getNode(), n -> new HashMap<>()).put(r.name(), r);
      }
    }
    return new NodeViews(snapshot, Map.copyOf(shared), byNode);
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
    Map<ResourceType, Map<String, VersionedResource>> view = new EnumMap<>(ResourceType.class);
    Map<String, VersionedResource> own = workloadsByNode.getOrDefault(node, Map.of());
    Map<String, VersionedResource> workloads =
        own.isEmpty() ? sharedWorkloads : new UnionMap<>(sharedWorkloads, own);
    view.put(ResourceType.WORKLOAD, workloads);
    view.put(ResourceType.SERVICE, snapshot.of(ResourceType.SERVICE));
    return view;
  }
}
