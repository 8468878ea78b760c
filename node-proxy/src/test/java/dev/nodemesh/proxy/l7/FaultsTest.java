package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.testing.MeshYaml;
import java.nio.file.Path;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The fault layer's draw: its percentages on a seeded generator, and a fault that is missing. */
class FaultsTest {
  @Test
  void rollsHitTheirShare() {
    SplittableRandom random = new SplittableRandom(3);
    int hits = 0;
    for (int i = 0; i < 10_000; i++) {
      hits += Faults.roll(HttpFault.MILLION / 4, random) ? 1 : 0;
    }
    assertTrue(hits > 2_300 && hits < 2_700, "about a quarter: " + hits);
    assertTrue(Faults.roll(HttpFault.MILLION, random));
    assertFalse(Faults.roll(0, random));
  }

  @Test
  void drawsDelayAndAbortFromTheSnapshotsFault(@TempDir Path dir) throws Exception {
    MeshYaml.write(
        dir,
        "fault.yaml",
        """
        apiVersion: traffic.nodemesh.dev/v1alpha1
        kind: HTTPFault
        metadata: {name: slow, namespace: default}
        spec:
          delay: {fixedDelay: 2s, percentage: 100}
          abort: {httpStatus: 418, percentage: 100}
        """);
    ConfigSnapshot snapshot = ConfigLoader.load(dir);
    SplittableRandom random = new SplittableRandom(1);
    assertSame(Faults.Draw.NONE, Faults.draw(snapshot, null, random), "no fault on the rule");
    Faults.Draw missing = Faults.draw(snapshot, new NamespacedName("default", "gone"), random);
    assertTrue(missing.missing());
    Faults.Draw d = Faults.draw(snapshot, new NamespacedName("default", "slow"), random);
    assertFalse(d.missing());
    assertTrue(d.delayed());
    assertEquals(2_000_000_000L, d.delayNanos());
    assertEquals(418, d.abort().httpStatus());
    assertNull(Faults.Draw.NONE.abort());
  }
}
