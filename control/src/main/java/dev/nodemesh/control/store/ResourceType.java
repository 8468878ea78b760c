package dev.nodemesh.control.store;

import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.jspecify.annotations.Nullable;

/**
 * The resource types the control plane stores and serves: one per {@link ResourceKind} of the
 * model's registry, made from {@link ResourceKinds#ALL} (so a new kind needs nothing here), in its
 * order. Enum-like ({@link #values()}, {@link #ordinal()}, {@link #name()}) so the store, the
 * per-node views and the metrics can index arrays and sorted maps by it; {@link #newMap()} is the
 * map that iterates in registry order, as the {@code EnumMap} this used to be did. The constants
 * are conveniences for the few places that treat a kind specially (workloads per node).
 */
public final class ResourceType implements Comparable<ResourceType> {
  private static final List<ResourceType> ALL = all();

  public static final ResourceType WORKLOAD = of(ResourceKinds.WORKLOAD);
  public static final ResourceType SERVICE = of(ResourceKinds.SERVICE);
  public static final ResourceType AUTHORIZATION_POLICY = of(ResourceKinds.AUTHORIZATION_POLICY);
  public static final ResourceType PEER_AUTHENTICATION = of(ResourceKinds.PEER_AUTHENTICATION);
  public static final ResourceType HTTP_ROUTE = of(ResourceKinds.HTTP_ROUTE);
  public static final ResourceType TRAFFIC_POLICY = of(ResourceKinds.TRAFFIC_POLICY);
  public static final ResourceType HTTP_FAULT = of(ResourceKinds.HTTP_FAULT);

  private final ResourceKind<?, ?> kind;
  private final int ordinal;
  private final String name;

  private ResourceType(ResourceKind<?, ?> kind, int ordinal) {
    this.kind = kind;
    this.ordinal = ordinal;
    // "HttpRoute" -> "HTTP_ROUTE": the metric label ("http_route") and log form it always had.
    this.name = kind.name().replaceAll("([a-z])([A-Z])", "$1_$2").toUpperCase(Locale.ROOT);
  }

  private static List<ResourceType> all() {
    List<ResourceType> out = new ArrayList<>();
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      out.add(new ResourceType(k, out.size()));
    }
    return List.copyOf(out);
  }

  /** Every type, in the registry's order. */
  public static ResourceType[] values() {
    return ALL.toArray(new ResourceType[0]);
  }

  /** The type of {@code kind}. */
  public static ResourceType of(ResourceKind<?, ?> kind) {
    for (ResourceType t : ALL) {
      if (t.kind == kind) {
        return t;
      }
    }
    throw new IllegalArgumentException(kind + " is not in ResourceKinds.ALL");
  }

  /** An empty map keyed by type that iterates in registry order. */
  public static <V> Map<ResourceType, V> newMap() {
    return new TreeMap<>();
  }

  public ResourceKind<?, ?> kind() {
    return kind;
  }

  public String typeUrl() {
    return kind.typeUrl();
  }

  /** The position in {@link #values()}. */
  public int ordinal() {
    return ordinal;
  }

  /** The kind's name in upper snake case ("HTTP_ROUTE"). */
  public String name() {
    return name;
  }

  public static @Nullable ResourceType ofTypeUrl(String typeUrl) {
    for (ResourceType t : ALL) {
      if (t.typeUrl().equals(typeUrl)) {
        return t;
      }
    }
    return null;
  }

  @Override
  public int compareTo(ResourceType o) {
    return Integer.compare(ordinal, o.ordinal);
  }

  @Override
  public String toString() {
    return name;
  }
}
