package dev.nodemesh.proxy.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.model.cni.PodRecords;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The start-up reconciliation from the CNI plugin's records, without namespaces: the enroller's
 * per-pod work is a fake run through the real {@link EnrolmentBatch} on a pool of two threads.
 */
class RecordReconcilerTest {
  @TempDir Path dir;
  private final ExecutorService pool = Executors.newFixedThreadPool(2);
  private final ExecutorService agent = Executors.newSingleThreadExecutor();

  @AfterEach
  void tearDown() throws InterruptedException {
    pool.shutdownNow();
    agent.shutdownNow();
    assertTrue(pool.awaitTermination(30, TimeUnit.SECONDS));
    assertTrue(agent.awaitTermination(30, TimeUnit.SECONDS));
  }

  private PodRecords records() {
    return new PodRecords(dir.resolve("records"));
  }

  /** A record of pod {@code name} whose netns is a file that exists unless {@code gone}. */
  private void record(String name, String ip, boolean gone) throws IOException {
    Path netns = dir.resolve("netns-" + name);
    if (!gone) {
      Files.writeString(netns, "");
    }
    records()
        .write(
            new PodRecords.Record(
                "net",
                "ctr-" + name,
                "eth0",
                netns.toString(),
                "uid-" + name,
                name,
                "default",
                List.of(ip)));
  }

  private Set<String> recorded() throws IOException {
    return records().list().stream()
        .map(PodRecords.Record::name)
        .collect(Collectors.toCollection(TreeSet::new));
  }

  @Test
  void everyLivePodIsEnrolledAFailureIsReportedAndTheRecordsOfDeletedPodsGo() throws Exception {
    for (int i = 0; i < 6; i++) {
      record("pod-" + i, "10.0.0." + (10 + i), false);
    }
    record("gone", "10.0.0.30", true);
    record("bad-ip", "not-an-ip", false);
    record("fails", "10.0.0.31", false);
    List<Prior> priors = Collections.synchronizedList(new ArrayList<>());
    EnrolmentBatchTest.Steps steps =
        new EnrolmentBatchTest.Steps(
            uid -> {
              if (uid.equals("uid-fails")) {
                throw new IOException("cannot listen in the pod");
              }
            });

    RecordReconciler.Result r =
        RecordReconciler.run(
            records(),
            (specs, prior, on) -> {
              priors.add(prior);
              return EnrolmentBatch.run(specs, on, steps);
            },
            pool);

    assertEquals(6, r.enrolled(), r.toString());
    assertEquals(1, r.removed(), r.toString());
    assertEquals(2, r.failures().size(), r.toString());
    assertTrue(
        r.failures().stream()
            .anyMatch(
                f ->
                    f.startsWith("default/bad-ip (container ctr-bad-ip): ")
                        && f.contains("ips[0]")),
        r.toString());
    assertTrue(
        r.failures().stream()
            .anyMatch(
                f -> f.equals("default/fails (container ctr-fails): cannot listen in the pod")),
        r.toString());
    assertEquals(List.of(Prior.INSTALLED), priors, "a recorded pod's rules are expected in place");
    Set<String> committed =
        steps.committed.stream()
            .map(c -> c.substring(c.indexOf('/') + 1))
            .collect(Collectors.toSet());
    assertEquals(Set.of("pod-0", "pod-1", "pod-2", "pod-3", "pod-4", "pod-5"), committed);
    // The deleted pod's record goes; a failed pod's stays, for its DEL and the next start.
    Set<String> expected = new TreeSet<>(committed);
    expected.addAll(List.of("bad-ip", "fails"));
    assertEquals(expected, recorded());
  }

  /**
   * RecordReconciler's ordering promise: it runs on the agent thread, so a DelPod the agent takes
   * while the pods are being enrolled concurrently runs after every one of them is registered.
   */
  @Test
  void aDelTakenDuringReconciliationRunsAfterItOnTheAgentThread() throws Exception {
    for (int i = 0; i < 4; i++) {
      record("pod-" + i, "10.0.0." + (10 + i), false);
    }
    CountDownLatch delQueued = new CountDownLatch(1);
    EnrolmentBatchTest.Steps steps =
        new EnrolmentBatchTest.Steps(uid -> delQueued.await(30, TimeUnit.SECONDS));
    Future<RecordReconciler.Result> reconciled =
        agent.submit(
            () ->
                RecordReconciler.run(
                    records(), (specs, prior, on) -> EnrolmentBatch.run(specs, on, steps), pool));
    Future<?> del = agent.submit(() -> steps.events.add("del uid-pod-2"));
    delQueued.countDown();
    assertEquals(4, reconciled.get(30, TimeUnit.SECONDS).enrolled());
    del.get(30, TimeUnit.SECONDS);
    List<String> onAgent = steps.events.stream().filter(e -> !e.startsWith("prepare")).toList();
    assertEquals(5, onAgent.size(), onAgent.toString());
    assertEquals("del uid-pod-2", onAgent.get(4), onAgent.toString());
  }
}
