package dev.nodemesh.model.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/**
 * The snapshot's generic slots: a kind the snapshot has no index for keeps its records by record
 * type, through every copy the snapshot makes of itself, and counts in its content.
 */
class ConfigSnapshotSlotsTest {
  /** A kind no code in the snapshot knows: what a new plain kind looks like to it. */
  record Note(String text) {}

  private static final ConfigSnapshot.Key<Note> NOTES = () -> Note.class;

  @Test
  void aKindWithoutIndexKeepsItsRecordsThroughEveryCopy() throws Exception {
    Workload w =
        new Workload(
            "u1",
            "web-1",
            "shop",
            List.of(InetAddress.getByName("10.0.0.5")),
            Map.of(),
            "default",
            "n1",
            Map.of(),
            "",
            true);
    ConfigSnapshot s =
        ConfigSnapshot.builder(3)
            .put(NOTES, List.of(new Note("a"), new Note("b")))
            .put(() -> Workload.class, List.of(w))
            .build();
    assertEquals(List.of(new Note("a"), new Note("b")), s.all(NOTES));
    assertEquals(List.of(w), s.workloads(), "the named accessor reads the same slot");
    assertEquals(s.all(NOTES), s.withVersion(4).all(NOTES));
    assertEquals(s.all(NOTES), s.withWorkloads(List.of()).all(NOTES));
    assertEquals(List.of(), s.withWorkloads(List.of()).workloads());
    assertTrue(s.sameContent(s.withVersion(9)));
    assertFalse(
        s.sameContent(ConfigSnapshot.builder(3).put(() -> Workload.class, List.of(w)).build()));
    assertTrue(
        ConfigSnapshot.empty().sameContent(ConfigSnapshot.builder(0).put(NOTES, List.of()).build()),
        "a kind given no records is the same content as a kind not given");
    assertEquals(List.of(), ConfigSnapshot.empty().all(NOTES));
  }

  @Test
  void aRecordOfAnotherTypeIsRefused() {
    @SuppressWarnings({"unchecked", "rawtypes"}) // what an unchecked caller could pass
    List<Note> wrong = (List) List.of("not a note");
    assertThrows(IllegalArgumentException.class, () -> ConfigSnapshot.builder(1).put(NOTES, wrong));
  }

  @Test
  void theIndexedKindsStillCheckConsistency() throws Exception {
    TrafficPolicy a =
        new TrafficPolicy(
            "a",
            "shop",
            "web",
            TrafficPolicy.LoadBalancer.DEFAULT,
            null,
            null,
            TrafficPolicy.Retry.DEFAULT,
            null);
    TrafficPolicy b =
        new TrafficPolicy(
            "b",
            "shop",
            "web",
            TrafficPolicy.LoadBalancer.DEFAULT,
            null,
            null,
            TrafficPolicy.Retry.DEFAULT,
            null);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> ConfigSnapshot.builder(1).put(() -> TrafficPolicy.class, List.of(a, b)).build());
    assertEquals("two TrafficPolicies target Service shop/web", e.getMessage());
  }
}
