package dev.nodemesh.control.store;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.nodemesh.model.kind.ResourceKinds;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
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
      assertSame(t, ResourceType.of(t.kind()));
      assertSame(t, ResourceType.values()[t.ordinal()]);
    }
  }

  @Test
  void namesAreTheMetricLabelsTheEnumHad() {
    assertEquals(
        List.of(
            "WORKLOAD",
            "SERVICE",
            "AUTHORIZATION_POLICY",
            "PEER_AUTHENTICATION",
            "HTTP_ROUTE",
            "TRAFFIC_POLICY",
            "HTTP_FAULT"),
        Arrays.stream(ResourceType.values()).map(ResourceType::name).toList());
    // A map keyed by type iterates in registry order, as the EnumMaps did.
    Map<ResourceType, String> m = ResourceType.newMap();
    m.put(ResourceType.HTTP_FAULT, "f");
    m.put(ResourceType.WORKLOAD, "w");
    assertEquals(List.of(ResourceType.WORKLOAD, ResourceType.HTTP_FAULT), List.copyOf(m.keySet()));
  }
}
