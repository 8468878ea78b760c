package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.config.SnapshotHolder;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** /ready's start-up hold: a proxy re-enrolling recorded pods is not ready, whatever the config. */
class ReadinessTest {
  @Test
  void aHoldOverridesAnAcceptedConfigUntilReleased() {
    SnapshotHolder snapshots = new SnapshotHolder();
    Readiness r = new Readiness(snapshots, new PodRegistry(), "node-1");
    assertEquals("no config accepted yet", r.notReadyReason());
    snapshots.swap(ConfigSnapshot.empty().withVersion(1));
    assertNull(r.notReadyReason());
    r.hold("re-enrolling the pods recorded in /var/run/nodemesh/cni");
    assertFalse(r.ready());
    assertEquals("re-enrolling the pods recorded in /var/run/nodemesh/cni", r.notReadyReason());
    r.release();
    assertTrue(r.ready());
  }

  /**
   * A node running CoreDNS: its pod is in the config but outside the capture scope, so the CNI
   * plugin never enrols it and readiness must not wait for it; a captured pod still holds it.
   */
  @Test
  void readinessWaitsOnlyForCapturedPodsOfThisNode() throws Exception {
    SnapshotHolder snapshots = new SnapshotHolder();
    PodRegistry pods = new PodRegistry();
    Readiness r = new Readiness(snapshots, pods, "node-1");
    Workload dns =
        new Workload(
            "uid-dns",
            "coredns-1",
            "kube-system",
            List.of(InetAddress.getByName("10.1.0.5")),
            Map.of(),
            "coredns",
            "node-1",
            Map.of());
    Workload app =
        new Workload(
            "uid-app",
            "app-1",
            "shop",
            List.of(InetAddress.getByName("10.1.0.6")),
            Map.of(),
            "app",
            "node-1",
            Map.of());
    snapshots.swap(CaptureScope.DEFAULT.apply(new ConfigSnapshot(1, List.of(dns, app), List.of())));
    assertEquals("pods of node node-1 not enrolled yet: shop/app-1", r.notReadyReason());
    snapshots.swap(CaptureScope.DEFAULT.apply(new ConfigSnapshot(2, List.of(dns), List.of())));
    assertNull(r.notReadyReason(), "the excluded CoreDNS pod does not hold readiness");
  }

  @Test
  void aSupersededProxyIsNotReadyWhateverElseHolds() {
    SnapshotHolder snapshots = new SnapshotHolder();
    Readiness r = new Readiness(snapshots, new PodRegistry(), "node-1");
    snapshots.swap(ConfigSnapshot.empty().withVersion(1));
    java.util.concurrent.atomic.AtomicBoolean newer =
        new java.util.concurrent.atomic.AtomicBoolean();
    r.supersededWhen(newer::get);
    assertTrue(r.ready());
    newer.set(true);
    assertEquals("superseded: a newer proxy took over the agent socket", r.notReadyReason());
  }
}
