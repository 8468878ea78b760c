package dev.nodemesh.model.kind;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.Workload;
import java.util.HashSet;
import java.util.Set;
import org.junit.jupiter.api.Test;

class ResourceKindsTest {
  @Test
  void typeUrlsAreTheProtoNamesAndUnique() {
    assertEquals(
        "type.googleapis.com/nodemesh.config.v1.Workload", ResourceKinds.WORKLOAD.typeUrl());
    Set<String> seen = new HashSet<>();
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      assertTrue(seen.add(k.typeUrl()), k + " repeats a type URL");
      assertSame(k, ResourceKinds.ofTypeUrl(k.typeUrl()));
      assertEquals(k.protoType().getSimpleName(), k.name());
    }
    assertNull(ResourceKinds.ofTypeUrl("type.googleapis.com/nodemesh.config.v1.Nothing"));
  }

  @Test
  void aWorkloadThatIsNotReadyServesOnlyItsOwnNode() {
    Workload ready = Workload.newBuilder().setReady(true).setNode("n1").build();
    Workload starting = Workload.newBuilder().setReady(false).setNode("n1").build();
    assertTrue(ResourceKinds.WORKLOAD.servesNode(ready, "n2"));
    assertTrue(ResourceKinds.WORKLOAD.servesNode(starting, "n1"));
    assertFalse(ResourceKinds.WORKLOAD.servesNode(starting, "n2"));
  }
}
