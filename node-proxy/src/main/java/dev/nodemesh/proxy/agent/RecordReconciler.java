package dev.nodemesh.proxy.agent;

import dev.nodemesh.api.agent.v1.Pod;
import dev.nodemesh.model.cni.PodRecords;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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
 * during reconciliation is applied after it. A record that cannot be enrolled (an invalid record, a
 * namespace the proxy cannot enter) is reported and kept: the plugin's DEL still removes it, and
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

  private RecordReconciler() {}

  /** Enrols every record's pod through {@code enroller}; call it on the agent thread. */
  public static Result run(PodRecords records, Enroller enroller) throws IOException {
    int enrolled = 0;
    int removed = 0;
    List<String> failures = new ArrayList<>();
    for (PodRecords.Record r : records.list()) {
      String who = r.namespace() + "/" + r.name() + " (container " + r.containerId() + ")";
      if (r.netns().isEmpty() || !Files.exists(Path.of(r.netns()))) {
        records.remove(r.containerId());
        removed++;
        log.info("{}: network namespace {} is gone; record removed", who, r.netns());
        continue;
      }
      try {
        Enroller.PodSpec spec =
            NodeAgentService.validate(
                Pod.newBuilder()
                    .setUid(r.uid())
                    .setName(r.name())
                    .setNamespace(r.namespace())
                    .setNetnsPath(r.netns())
                    .addAllIps(r.ips())
                    .build(),
                "record " + r.containerId());
        enroller.add(spec);
        enrolled++;
      } catch (IOException | IllegalArgumentException e) {
        failures.add(who + ": " + e.getMessage());
        log.warn("{}: not re-enrolled: {}", who, e.getMessage());
      }
    }
    return new Result(enrolled, removed, failures);
  }
}
