package dev.nodemesh.control.source;

import dev.nodemesh.model.config.Workload;
import io.fabric8.kubernetes.api.model.Node;
import io.fabric8.kubernetes.api.model.ObjectReference;
import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.PodCondition;
import io.fabric8.kubernetes.api.model.discovery.v1.Endpoint;
import io.fabric8.kubernetes.api.model.discovery.v1.EndpointSlice;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.jspecify.annotations.Nullable;

/**
 * What {@link KubernetesSource} derives from Kubernetes objects, as pure functions of the objects
 * (no informers, no store, no client), so each rule is unit-tested on hand-built objects: which
 * pods are workloads and which are ready, a node's zone and how it overrides a pod's, which Service
 * an EndpointSlice belongs to and which ready pods it lists.
 *
 * <p>Limits: the object-to-record parsing itself is the model's {@code ResourceParser}; this class
 * holds only the Kubernetes-specific rules around it.
 */
final class KubernetesDerivations {
  /** The label an EndpointSlice names its Service by. */
  static final String SERVICE_NAME_LABEL = "kubernetes.io/service-name";

  /** Deprecated since Kubernetes 1.17 but still set by some older clouds' node controllers. */
  static final String LEGACY_ZONE_LABEL = "failure-domain.beta.kubernetes.io/zone";

  private KubernetesDerivations() {}

  /**
   * Whether a pod is a workload at all: not when it has no IP yet, has finished (Succeeded/Failed,
   * whose IP may already be reused), or is on the host network (its IP is the node's, shared with
   * every other such pod; it is not meshed).
   */
  static boolean isWorkload(Pod pod) {
    var status = pod.getStatus();
    String phase = status == null ? null : status.getPhase();
    boolean hasIp = status != null && status.getPodIP() != null && !status.getPodIP().isEmpty();
    boolean hostNetwork =
        pod.getSpec() != null && Boolean.TRUE.equals(pod.getSpec().getHostNetwork());
    return hasIp && !hostNetwork && !"Succeeded".equals(phase) && !"Failed".equals(phase);
  }

  /** Whether the pod's Ready condition is True; false when it has none (yet). */
  static boolean ready(Pod pod) {
    if (pod.getStatus() == null || pod.getStatus().getConditions() == null) {
      return false;
    }
    for (PodCondition c : pod.getStatus().getConditions()) {
      if ("Ready".equals(c.getType())) {
        return "True".equals(c.getStatus());
      }
    }
    return false;
  }

  /**
   * The zone of a node from its labels ({@value Workload#ZONE_LABEL}, else {@value
   * #LEGACY_ZONE_LABEL}); empty when it has neither.
   */
  static String zoneOf(Node node) {
    Map<String, String> labels = node.getMetadata().getLabels();
    if (labels == null) {
      return "";
    }
    String zone = labels.get(Workload.ZONE_LABEL);
    if (zone == null || zone.isEmpty()) {
      zone = labels.get(LEGACY_ZONE_LABEL);
    }
    return zone == null ? "" : zone;
  }

  /**
   * The workload in its node's zone. The node's zone wins over a Pod's own {@value
   * Workload#ZONE_LABEL} label: Kubernetes puts the zone on Nodes, and a label copied into a
   * Deployment's pod template would give every replica the same zone wherever it runs. The Pod
   * label (what local mode uses) counts only when the node says nothing ({@code nodeZone} empty).
   */
  static Workload inZone(Workload w, String nodeZone) {
    if (nodeZone.isEmpty() || nodeZone.equals(w.zone())) {
      return w;
    }
    return new Workload(
        w.uid(),
        w.name(),
        w.namespace(),
        w.ips(),
        w.labels(),
        w.serviceAccount(),
        w.nodeName(),
        w.namedPorts(),
        nodeZone);
  }

  /** The name of the Service an EndpointSlice belongs to; null when it names none. */
  static @Nullable String serviceOf(EndpointSlice slice) {
    var labels = slice.getMetadata().getLabels();
    return labels == null ? null : labels.get(SERVICE_NAME_LABEL);
  }

  /**
   * The uids of the ready pods that {@code slices} list for Service {@code namespace/name}
   * (endpoints without a readiness condition count as ready, as Kubernetes says).
   */
  static Set<String> readyPodUids(String namespace, String name, Iterable<EndpointSlice> slices) {
    Set<String> uids = new TreeSet<>();
    for (EndpointSlice slice : slices) {
      if (!namespace.equals(slice.getMetadata().getNamespace())
          || !name.equals(serviceOf(slice))
          || slice.getEndpoints() == null) {
        continue;
      }
      for (Endpoint e : slice.getEndpoints()) {
        ObjectReference ref = e.getTargetRef();
        boolean ready =
            e.getConditions() == null || !Boolean.FALSE.equals(e.getConditions().getReady());
        if (ref != null && "Pod".equals(ref.getKind()) && ref.getUid() != null && ready) {
          uids.add(ref.getUid());
        }
      }
    }
    return uids;
  }
}
