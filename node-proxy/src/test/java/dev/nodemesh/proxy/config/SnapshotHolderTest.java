package dev.nodemesh.proxy.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.testing.MeshYaml;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SnapshotHolderTest {
  @Test
  void startsEmptyAndSwapsReturningThePrevious() {
    SnapshotHolder holder = new SnapshotHolder();
    assertSame(ConfigSnapshot.empty(), holder.current());
    ConfigSnapshot next = ConfigSnapshot.empty().withVersion(5);
    assertSame(ConfigSnapshot.empty(), holder.swap(next));
    assertSame(next, holder.current());
    assertEquals(5, holder.current().version());
  }

  @Test
  void listenersHearEachSwapAfterItIsCurrentAndNotTheSameSnapshotAgain() {
    SnapshotHolder holder = new SnapshotHolder();
    List<String> heard = new ArrayList<>();
    holder.onSwap(
        (previous, next) ->
            heard.add(
                previous.version() + "->" + next.version() + " " + holder.current().version()));
    ConfigSnapshot one = ConfigSnapshot.empty().withVersion(1);
    holder.swap(one);
    holder.swap(one); // nothing changed: nobody is told
    holder.swap(ConfigSnapshot.empty().withVersion(2));
    assertEquals(List.of("0->1 1", "1->2 2"), heard);
  }

  @Test
  void aListenerThatThrowsNeitherUndoesTheSwapNorSilencesTheOthers() {
    SnapshotHolder holder = new SnapshotHolder();
    List<Long> heard = new ArrayList<>();
    holder.onSwap(
        (previous, next) -> {
          throw new IllegalStateException("listener bug");
        });
    holder.onSwap((previous, next) -> heard.add(next.version()));
    ConfigSnapshot next = ConfigSnapshot.empty().withVersion(3);
    assertSame(ConfigSnapshot.empty(), holder.swap(next));
    assertSame(next, holder.current());
    assertEquals(List.of(3L), heard);
  }

  @Test
  void theSnapshotItselfRejectsInconsistentInput() {
    Workload a =
        new Workload(
            "a",
            "a",
            "default",
            List.of(MeshYaml.ip("10.0.0.1")),
            Map.of(),
            "default",
            "",
            Map.of());
    Workload b =
        new Workload(
            "b",
            "b",
            "default",
            List.of(MeshYaml.ip("10.0.0.1")),
            Map.of(),
            "default",
            "",
            Map.of());
    assertThrows(
        IllegalArgumentException.class, () -> new ConfigSnapshot(1, List.of(a, b), List.of()));
  }
}
