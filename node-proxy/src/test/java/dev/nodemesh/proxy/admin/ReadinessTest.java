package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.agent.PodRegistry;
import dev.nodemesh.proxy.config.SnapshotHolder;
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
