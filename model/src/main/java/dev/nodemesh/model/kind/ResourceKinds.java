package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The registry of resource kinds: the one place that lists them. Each kind lives in its own kind
 * file ({@link WorkloadKind}, {@link TrafficPolicyKind}...), which holds its descriptors (the YAML
 * side, {@link YamlKind}: kind, API group, parser; the wire side, {@link ResourceKind}: type URL,
 * encode, decode, node filter, order, snapshot slot) and its encode and decode code. The list here
 * is {@link Yaml#ALL}, the Kubernetes kinds; the wire kinds ({@link #ALL}) and the input-only slots
 * are the ones those kinds feed, so a new plain kind is its proto message, its kind file and one
 * line in {@link Yaml#ALL}. {@code ResourceKindsTest} fails when a kind file's descriptors are not
 * listed or a kind has no sample there.
 *
 * <p>Kind files never read this class's fields (only the other way round), so the classes
 * initialise in any order.
 */
public final class ResourceKinds {
  private ResourceKinds() {}

  /** ReferenceGrants: an input-only slot ({@link ReferenceGrantKind}). */
  public static final InputSlot<ReferenceGrant> REFERENCE_GRANTS = ReferenceGrantKind.SLOT;

  // The wire kinds the rest of the code names (the control plane's workloads per node, the
  // Kubernetes source's Pods and Services); a new kind needs no constant here.
  public static final ResourceKind<dev.nodemesh.api.config.v1.Workload, Workload> WORKLOAD =
      WorkloadKind.WIRE;
  public static final ResourceKind<dev.nodemesh.api.config.v1.Service, MeshService> SERVICE =
      ServiceKind.WIRE;
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.AuthorizationPolicy, AuthorizationPolicy>
      AUTHORIZATION_POLICY = AuthorizationPolicyKind.WIRE;
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.PeerAuthentication, PeerAuthentication>
      PEER_AUTHENTICATION = PeerAuthenticationKind.WIRE;
  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpRoute, HttpRoute> HTTP_ROUTE =
      HttpRouteKind.WIRE;
  public static final ResourceKind<dev.nodemesh.api.config.v1.TrafficPolicy, TrafficPolicy>
      TRAFFIC_POLICY = TrafficPolicyKind.WIRE;
  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpFault, HttpFault> HTTP_FAULT =
      HttpFaultKind.WIRE;

  /** The Kubernetes kinds: what the loader and the sources read, and which slot each feeds. */
  public static final class Yaml {
    private Yaml() {}

    public static final YamlKind<Workload> POD = WorkloadKind.POD;
    public static final YamlKind<MeshService> SERVICE = ServiceKind.YAML;
    public static final YamlKind<ReferenceGrant> REFERENCE_GRANT = ReferenceGrantKind.YAML;

    /**
     * Every Kubernetes kind the mesh reads: THE list of the registry. Its order is the order the
     * wire kinds are subscribed to (each at its first YAML kind), so workloads and services come
     * first.
     */
    public static final List<YamlKind<?>> ALL =
        List.of(
            WorkloadKind.POD,
            ServiceKind.YAML,
            AuthorizationPolicyKind.YAML,
            PeerAuthenticationKind.YAML,
            HttpRouteKind.HTTP_ROUTE,
            HttpRouteKind.GRPC_ROUTE,
            TrafficPolicyKind.YAML,
            HttpFaultKind.YAML,
            ReferenceGrantKind.YAML);

    /** The kind named {@code kind} (e.g. "HTTPRoute"); null if the mesh does not read it. */
    public static @Nullable YamlKind<?> named(String kind) {
      for (YamlKind<?> k : ALL) {
        if (k.kind().equals(kind)) {
          return k;
        }
      }
      return null;
    }

    /** The kinds that feed {@code slot}, in registry order. */
    public static List<YamlKind<?>> feeding(Slot<?> slot) {
      List<YamlKind<?>> out = new ArrayList<>();
      for (YamlKind<?> k : ALL) {
        if (k.slot().equals(slot)) {
          out.add(k);
        }
      }
      return out;
    }
  }

  /** Every slot a YAML kind feeds, in registry order: wire kinds and input-only slots. */
  public static final List<Slot<?>> SLOTS = slots();

  /** Every wire kind, in the order a node subscribes to them. */
  public static final List<ResourceKind<?, ?>> ALL = wireKinds();

  private static List<Slot<?>> slots() {
    Set<Slot<?>> out = new LinkedHashSet<>();
    Yaml.ALL.forEach(k -> out.add(k.slot()));
    return List.copyOf(out);
  }

  private static List<ResourceKind<?, ?>> wireKinds() {
    List<ResourceKind<?, ?>> out = new ArrayList<>();
    for (Slot<?> s : SLOTS) {
      if (s instanceof ResourceKind<?, ?> k) {
        out.add(k);
      }
    }
    return List.copyOf(out);
  }

  /** The resource name of every namespaced kind but GRPCRoute: {@code <namespace>/<name>}. */
  public static String resourceName(String namespace, String name) {
    return YamlKind.plainName(namespace, name);
  }

  /** The kind with this xDS type URL; null if there is none. */
  public static @Nullable ResourceKind<?, ?> ofTypeUrl(String typeUrl) {
    for (ResourceKind<?, ?> k : ALL) {
      if (k.typeUrl().equals(typeUrl)) {
        return k;
      }
    }
    return null;
  }

  /** Where the values of each kind come from when a snapshot is built. */
  public interface Values {
    <R> List<R> of(ResourceKind<?, R> kind);
  }

  /**
   * The snapshot of every kind's values, each in its kind's slot.
   *
   * @throws IllegalArgumentException when the values are inconsistent across kinds
   */
  public static ConfigSnapshot snapshot(long version, Values values) {
    ConfigSnapshot.Builder b = ConfigSnapshot.builder(version);
    for (ResourceKind<?, ?> kind : ALL) {
      put(b, kind, values);
    }
    return b.build();
  }

  private static <R> void put(ConfigSnapshot.Builder b, ResourceKind<?, R> kind, Values values) {
    b.put(kind, values.of(kind));
  }
}
