package dev.nodemesh.control.enrolment;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Consumer;

/**
 * The pods each node proxy last said it has enrolled, by node name, in memory. A source that gates
 * capture on enrolment asks {@link #enrolled} with the workload's own node, so a node's report can
 * only ever mark that node's pods: a uid of another node's pod in it matches nothing.
 *
 * <p>Each report replaces the node's previous one (the proxy sends the whole set), so a pod removed
 * on the node (CNI DEL, the pod deleted) leaves with the next report, and a restarted proxy's first
 * report after its re-enrolment states again what it serves. A control plane that restarts starts
 * empty until the proxies report again (they repeat their report now and then); on Kubernetes the
 * pod annotation the source writes keeps the state meanwhile.
 *
 * <p>Thread-safe: reports arrive on gRPC's threads; listeners run on the reporting thread and must
 * only hand work on.
 */
public final class EnrolmentRegistry {
  private final Map<String, Set<String>> byNode = new ConcurrentHashMap<>();
  private final List<Consumer<String>> listeners = new CopyOnWriteArrayList<>();

  /**
   * Records {@code uids} as everything {@code node} has enrolled now.
   *
   * @return true when that differs from what was recorded (listeners were told)
   */
  public boolean report(String node, Set<String> uids) {
    Set<String> next = Set.copyOf(uids);
    Set<String> old = byNode.put(node, next);
    if (next.equals(old)) {
      return false;
    }
    listeners.forEach(l -> l.accept(node));
    return true;
  }

  /** True when {@code node}'s proxy reported the pod {@code uid} enrolled in its latest report. */
  public boolean enrolled(String node, String uid) {
    return !node.isEmpty() && byNode.getOrDefault(node, Set.of()).contains(uid);
  }

  /** True once {@code node} has reported (to this control plane, since it started). */
  public boolean knows(String node) {
    return byNode.containsKey(node);
  }

  /** The uids {@code node} last reported; empty when it never did. */
  public Set<String> of(String node) {
    return byNode.getOrDefault(node, Set.of());
  }

  /** The nodes that have reported. */
  public Set<String> nodes() {
    return Set.copyOf(byNode.keySet());
  }

  /** Calls {@code listener} with the node's name after each report that changed something. */
  public void onChange(Consumer<String> listener) {
    listeners.add(listener);
  }
}
