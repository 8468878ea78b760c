package dev.nodemesh.control.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.nodemesh.model.kind.ResourceKinds;
import java.util.Arrays;
import org.junit.jupiter.api.Test;

class ResourceTypeTest {
  @Test
  void oneTypePerKindInTheRegistrysOrder() {
    assertEquals(
        ResourceKinds.ALL,
        Arrays.stream(ResourceType.values()).map(ResourceType::kind).toList(),
        "a kind added to ResourceKinds needs its ResourceType");
    for (ResourceType t : ResourceType.values()) {
      assertSame(t, ResourceType.ofTypeUrl(t.typeUrl()));
    }
  }
}
