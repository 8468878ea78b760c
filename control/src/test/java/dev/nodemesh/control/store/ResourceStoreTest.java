package dev.nodemesh.control.store;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

class ResourceStoreTest {
  private final AtomicLong clock = new AtomicLong(1000);
  private final AtomicInteger changes = new AtomicInteger();
  private final ResourceStore store = new ResourceStore(clock::get, changes::incrementAndGet);

  @Test
  void sameContentIsNotAChangeAndKeepsItsVersion() {
    assertTrue(store.put(ResourceType.WORKLOAD, key("a"), pod("a", "n1", "10.0.0.1", Map.of())));
    String v = store.get(ResourceType.WORKLOAD, key("a")).version();
    // A resync delivers an equal object: nothing moves, so nothing is pushed.
    assertFalse(store.put(ResourceType.WORKLOAD, key("a"), pod("a", "n1", "10.0.0.1", Map.of())));
    assertEquals(1, changes.get());
    assertEquals(1, store.revision());
    assertEquals(v, store.get(ResourceType.WORKLOAD, key("a")).version());

    assertTrue(store.put(ResourceType.WORKLOAD, key("a"), pod("a", "n2", "10.0.0.1", Map.of())));
    assertNotEquals(v, store.get(ResourceType.WORKLOAD, key("a")).version());
    assertEquals(2, changes.get());
  }

  @Test
  void versionDoesNotDependOnLabelInsertionOrder() {
    Map<String, String> ab = new LinkedHashMap<>();
    ab.put("a", "1");
    ab.put("b", "2");
    Map<String, String> ba = new LinkedHashMap<>();
    ba.put("b", "2");
    ba.put("a", "1");
    assertEquals(
        VersionedResource.of("x", pod("x", "n", "10.0.0.1", ab)).version(),
        VersionedResource.of("x", pod("x", "n", "10.0.0.1", ba)).version());
  }

  @Test
  void replaceAllAddsChangesAndRemovesInOneChange() {
    store.put(ResourceType.WORKLOAD, key("a"), pod("a", "n1", "10.0.0.1", Map.of()));
    store.put(ResourceType.WORKLOAD, key("b"), pod("b", "n1", "10.0.0.2", Map.of()));
    changes.set(0);
    assertTrue(
        store.replaceAll(
            ResourceType.WORKLOAD,
            Map.of(
                key("a"), pod("a", "n1", "10.0.0.1", Map.of()),
                key("c"), pod("c", "n1", "10.0.0.3", Map.of()))));
    assertEquals(1, changes.get());
    assertNull(store.get(ResourceType.WORKLOAD, key("b")));
    assertNotNull(store.get(ResourceType.WORKLOAD, key("c")));
    assertFalse(
        store.replaceAll(
            ResourceType.WORKLOAD,
            Map.of(
                key("a"), pod("a", "n1", "10.0.0.1", Map.of()),
                key("c"), pod("c", "n1", "10.0.0.3", Map.of()))));
  }

  @Test
  void snapshotCarriesTheTimeOfTheFirstUnpublishedChange() {
    store.put(ResourceType.WORKLOAD, key("a"), pod("a", "n1", "10.0.0.1", Map.of()));
    clock.set(2000);
    store.put(ResourceType.WORKLOAD, key("b"), pod("b", "n1", "10.0.0.2", Map.of()));
    clock.set(3000);
    StoreSnapshot s = store.snapshot();
    assertEquals(1000, s.changedAtNanos());
    assertEquals(2, s.of(ResourceType.WORKLOAD).size());
    assertTrue(store.remove(ResourceType.WORKLOAD, key("a")));
    assertFalse(store.remove(ResourceType.WORKLOAD, key("a")));
    assertEquals(3000, store.snapshot().changedAtNanos());
    // The snapshot is a copy: later writes do not show through.
    assertEquals(2, s.of(ResourceType.WORKLOAD).size());
  }
}
