package dev.nodemesh.proxy.agent;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.model.cni.PodRecords;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Rebuilds the enrolled pods from the CNI plugin's records when the node proxy starts, so a proxy
 * restart (upgrade, crash, OOM kill) keeps every pod meshed without the Kubernetes API: each record
 * whose network namespace still exists is enrolled again (its redirect rules, left in place by the
 * previous proxy, are rewritten to the same content; established connections are not touched), and
 * a record whose namespace is gone (the pod was deleted while the proxy was down and the plugin's
 * DEL could not reach it) is removed.
 *
 * <p>Runs on the agent thread before the first AddPod/DelPod is served, so a DEL that arrives
 * during reconciliation is applied after it: the pods are captured a few at a time on a pool of
 * their own ({@link Enroller#addAll}) while the agent thread waits for all of them and registers
 * each. A record that cannot be enrolled (an invalid record, a namespace the proxy cannot enter) is
 * reported and kept, the others are enrolled all the same: the plugin's DEL still removes it, and
 * readiness reports the pod missing if the config places it on this node.
 *
 * <p>Limits: "gone" means the path no longer exists (runtimes unmount and remove {@code
 * /var/run/netns/*} files on sandbox deletion); a stale path that still exists but is no longer a
 * namespace fails to enrol instead of being removed. eBPF mode's registered netns cookies of pods
 * deleted while the proxy was down are not pruned here.
 */
public final class RecordReconciler {
  private static final Logger log = LoggerFactory.getLogger(RecordReconciler.class);

  /** What one pass did. */
  public record Result(int enrolled, int removed, List<String> failures) {
    public Result {
      failures = List.copyOf(failures);
    }

    @Override
    public String toString() {
      return enrolled
          + " pods enrolled, "
          + removed
          + " records of deleted pods removed"
          + (failures.isEmpty() ? "" : ", " + failures.size() + " failed: " + failures);
    }
  }

  /**
   * Enrolments at once at start-up. Each is mostly waiting, not working: one nsenter +
   * iptables-restore (nft) of our re-install script took 25-60 ms here for 4-5 ms of CPU, most of
   * the rest spent in the kernel closing its netlink sockets (10-30 ms per close under strace);
   * then a few netlink round trips and listener binds on the event loops. Pods' namespaces do not
   * share nf_tables' commit lock, so those waits overlap; 16 at once keep the CPUs busy where 4
   * left them mostly waiting. More only queue for the same CPUs. See README's start-up section.
   */
  static final int THREADS = 16;

  private RecordReconciler() {}

  /**
   * Enrols every record's pod through {@code enroller}, up to {@link #THREADS} at once on threads
   * of its own ({@code nodemesh-reenrol-*}, gone when it returns); call it on the agent thread.
   */
  public static Result run(PodRecords records, Enroller enroller) throws IOException {
    ExecutorService pool =
        Executors.newFixedThreadPool(THREADS, new DefaultThreadFactory("nodemesh-reenrol", true));
    try {
      return run(records, enroller, pool);
    } finally {
      pool.shutdownNow();
    }
  }

  /**
   * As {@link #run(PodRecords, Enroller)}, on {@code pool}. Each namespace is expected to hold the
   * rules the previous proxy left ({@link Prior#INSTALLED}), so a pod costs one iptables-restore
   * per family that rewrites our chains; where that guess is wrong the rules are read and converged
   * all the same.
   */
  public static Result run(PodRecords records, Enroller enroller, ExecutorService pool)
      throws IOException {
    return run(records, enroller::addAll, pool);
  }

  /** What reconciling needs of the enroller: {@link Enroller#addAll} (its tests' seam). */
  @FunctionalInterface
  interface Batch {
    List<Enroller.Attempt> addAll(List<Enroller.PodSpec> specs, Prior prior, ExecutorService pool)
        throws InterruptedIOException;
  }

  static Result run(PodRecords records, Batch enroller, ExecutorService pool) throws IOException {
    int removed = 0;
    List<String> failures = new ArrayList<>();
    List<Enroller.PodSpec> specs = new ArrayList<>();
    List<String> names = new ArrayList<>();
    for (PodRecords.Record r : records.list()) {
      String who = r.namespace() + "/" + r.name() + " (container " + r.containerId() + ")";
      if (r.netns().isEmpty() || !Files.exists(Path.of(r.netns()))) {
        records.remove(r.containerId());
        removed++;
        log.info("{}: network namespace {} is gone; record removed", who, r.netns());
        continue;
      }
      try {
        specs.add(
            NodeAgentService.validate(
                Pod.newBuilder()
                    .setUid(r.uid())
                    .setName(r.name())
                    .setNamespace(r.namespace())
                    .setNetnsPath(r.netns())
                    .addAllIps(r.ips())
                    .build(),
                "record " + r.containerId()));
        names.add(who);
      } catch (IllegalArgumentException e) {
        failures.add(who + ": " + e.getMessage());
        log.warn("{}: not re-enrolled: {}", who, e.getMessage());
      }
    }
    int enrolled = 0;
    List<Enroller.Attempt> attempts = enroller.addAll(specs, Prior.INSTALLED, pool);
    for (int i = 0; i < attempts.size(); i++) {
      IOException e = attempts.get(i).failure();
      if (e == null) {
        enrolled++;
      } else {
        failures.add(names.get(i) + ": " + e.getMessage());
        log.warn("{}: not re-enrolled: {}", names.get(i), e.getMessage());
      }
    }
    return new Result(enrolled, removed, failures);
  }
}
