package dev.nodemesh.model.capture;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * The pods the mesh leaves alone: whole namespaces ({@code kube-system} and nodemesh's own by
 * default) and single pods by {@code namespace/name}. The CNI plugin passes such pods on without
 * enrolling them, so nothing on their node serves HBONE for them and no node proxy holds their
 * traffic: the config marks their workloads uncaptured, other nodes reach them directly, and {@code
 * /ready} does not wait for them.
 *
 * <p>Pod labels are not part of the scope on purpose: the plugin sees only the pod's namespace and
 * name (CNI_ARGS), and a rule the plugin cannot apply would let the config and the node disagree.
 *
 * @param excludedNamespaces namespaces never meshed
 * @param excludedPods {@code namespace/name} of single pods never meshed
 */
public record CaptureScope(Set<String> excludedNamespaces, Set<String> excludedPods) {

  /** The namespaces excluded when a setting names none. */
  public static final List<String> DEFAULT_EXCLUDED_NAMESPACES = List.of("kube-system", "nodemesh");

  /** The default: {@link #DEFAULT_EXCLUDED_NAMESPACES}, no single pods. */
  public static final CaptureScope DEFAULT =
      new CaptureScope(Set.copyOf(DEFAULT_EXCLUDED_NAMESPACES), Set.of());

  public CaptureScope {
    excludedNamespaces = Set.copyOf(excludedNamespaces);
    excludedPods = Set.copyOf(excludedPods);
    for (String p : excludedPods) {
      int slash = p.indexOf('/');
      if (slash <= 0 || slash == p.length() - 1 || p.indexOf('/', slash + 1) >= 0) {
        throw new IllegalArgumentException("entries of the form namespace/name, got \"" + p + "\"");
      }
    }
  }

  /**
   * A scope from a command line's repeated options: the default namespaces when {@code namespaces}
   * is empty (an empty list cannot mean "mesh kube-system" by accident; name a namespace nobody
   * uses to exclude none).
   */
  public static CaptureScope of(Collection<String> namespaces, Collection<String> pods) {
    return new CaptureScope(
        Set.copyOf(namespaces.isEmpty() ? DEFAULT_EXCLUDED_NAMESPACES : namespaces),
        Set.copyOf(pods));
  }

  /** True when the pod {@code namespace/name} is outside the mesh. */
  public boolean excludes(String namespace, String name) {
    return excludedNamespaces.contains(namespace) || excludedPods.contains(namespace + "/" + name);
  }

  /** {@code w} marked uncaptured when this scope excludes it; otherwise {@code w} as it is. */
  public Workload apply(Workload w) {
    return w.captured() && excludes(w.namespace(), w.name()) ? w.withCaptured(false) : w;
  }

  /** {@link #apply(Workload)} over a list, in order. */
  public List<Workload> apply(List<Workload> workloads) {
    List<Workload> out = new ArrayList<>(workloads.size());
    for (Workload w : workloads) {
      out.add(apply(w));
    }
    return out;
  }

  /** {@code snapshot} with {@link #apply(Workload)} over its workloads; itself when none change. */
  public ConfigSnapshot apply(ConfigSnapshot snapshot) {
    List<Workload> applied = apply(snapshot.workloads());
    return applied.equals(snapshot.workloads()) ? snapshot : snapshot.withWorkloads(applied);
  }

  /** For logs: the excluded namespaces and pods, sorted. */
  @Override
  public String toString() {
    return "namespaces "
        + new TreeSet<>(excludedNamespaces)
        + ", pods "
        + new TreeSet<>(excludedPods);
  }
}
