package dev.nodemesh.proxy.admin;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.config.SnapshotHolder;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.BooleanSupplier;
import org.jspecify.annotations.Nullable;

/**
 * What {@code /ready} means: a config has been accepted (version above 0), and every captured pod
 * that config places on this node ({@code spec.nodeName}) is enrolled, so no local pod's traffic
 * would be refused for lack of a listener. Pods enrolled but not in config do not block readiness
 * (their traffic is labelled "unknown" and passes). Cheap: one pass over the snapshot per probe.
 *
 * <p>A start-up step (re-enrolling the pods recorded by the CNI plugin) holds readiness with {@link
 * #hold} until it {@link #release}s it, so a restarted proxy is never ready with pods unmeshed.
 */
public final class Readiness {
  private final SnapshotHolder snapshots;
  private final PodRegistry pods;
  private final String nodeName;
  private volatile @Nullable String held;
  private volatile boolean draining;
  private volatile BooleanSupplier superseded = () -> false;

  public Readiness(SnapshotHolder snapshots, PodRegistry pods, String nodeName) {
    this.snapshots = snapshots;
    this.pods = pods;
    this.nodeName = nodeName;
  }

  /** Not ready, whatever the config says, until {@link #release()}; {@code why} is reported. */
  public void hold(String why) {
    held = why;
  }

  public void release() {
    held = null;
  }

  /** Not ready from now on: the proxy is draining before it exits. */
  public void draining() {
    draining = true;
  }

  /**
   * Not ready while {@code check} says a newer proxy has taken over (during an upgrade both answer
   * on the admin port, so a probe meant for the new one may reach this one: it must not say ready
   * for it).
   */
  public void supersededWhen(BooleanSupplier check) {
    superseded = check;
  }

  public boolean ready() {
    return notReadyReason() == null;
  }

  /** Null when ready, otherwise why not, for the probe's response body. */
  public @Nullable String notReadyReason() {
    if (draining) {
      return "draining: the proxy is stopping";
    }
    if (superseded.getAsBoolean()) {
      return "superseded: a newer proxy took over the agent socket";
    }
    String h = held;
    if (h != null) {
      return h;
    }
    ConfigSnapshot snapshot = snapshots.current();
    if (snapshot.version() == 0) {
      return "no config accepted yet";
    }
    Set<String> enrolled = new HashSet<>();
    for (EnrolledPod p : pods.all()) {
      enrolled.add(p.namespace() + "/" + p.name());
    }
    List<String> missing = new ArrayList<>();
    for (Workload w : snapshot.workloads()) {
      String id = w.namespace() + "/" + w.name();
      // A pod outside the capture scope is never enrolled (the CNI plugin passes it on): waiting
      // for it would keep a node with CoreDNS on it unready for ever.
      if (w.captured() && nodeName.equals(w.nodeName()) && !enrolled.contains(id)) {
        missing.add(id);
      }
    }
    if (!missing.isEmpty()) {
      return "pods of node " + nodeName + " not enrolled yet: " + String.join(", ", missing);
    }
    return null;
  }
}
