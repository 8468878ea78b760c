package dev.nodemesh.control.store;

import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import org.jspecify.annotations.Nullable;

/**
 * The resource types the control plane stores and serves: one per {@link ResourceKind}, whose type
 * URL it uses (defined once, in the model's registry). An enum so the store and the per-node views
 * can key {@code EnumMap}s by it.
 */
public enum ResourceType {
  WORKLOAD(ResourceKinds.WORKLOAD),
  SERVICE(ResourceKinds.SERVICE),
  AUTHORIZATION_POLICY(ResourceKinds.AUTHORIZATION_POLICY),
  PEER_AUTHENTICATION(ResourceKinds.PEER_AUTHENTICATION),
  HTTP_ROUTE(ResourceKinds.HTTP_ROUTE),
  TRAFFIC_POLICY(ResourceKinds.TRAFFIC_POLICY),
  HTTP_FAULT(ResourceKinds.HTTP_FAULT);

  private final ResourceKind<?, ?> kind;

  ResourceType(ResourceKind<?, ?> kind) {
    this.kind = kind;
  }

  public ResourceKind<?, ?> kind() {
    return kind;
  }

  public String typeUrl() {
    return kind.typeUrl();
  }

  public static @Nullable ResourceType ofTypeUrl(String typeUrl) {
    for (ResourceType t : values()) {
      if (t.typeUrl().equals(typeUrl)) {
        return t;
      }
    }
    return null;
  }
}
