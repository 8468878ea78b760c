package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.Comparator;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The registry of resource kinds: the one place that lists them, with their type URLs, and the one
 * place that says which slot of a {@link ConfigSnapshot} each fills. A new kind is a record, its
 * proto, its decoder method, an entry here and its slot in {@link #snapshot}.
 */
public final class ResourceKinds {
  private ResourceKinds() {}

  private static <P> boolean everyNode(P proto, String nodeName) {
    return true;
  }

  public static final ResourceKind<dev.nodemesh.api.config.v1.Workload, Workload> WORKLOAD =
      new ResourceKind<>(
          "Workload",
          dev.nodemesh.api.config.v1.Workload.class,
          dev.nodemesh.api.config.v1.Workload.getDescriptor(),
          ResourceDecoder::workload,
          (proto, nodeName) -> proto.getReady() || proto.getNode().equals(nodeName),
          Comparator.comparing(Workload::namespace).thenComparing(Workload::name));

  public static final ResourceKind<dev.nodemesh.api.config.v1.Service, MeshService> SERVICE =
      new ResourceKind<>(
          "Service",
          dev.nodemesh.api.config.v1.Service.class,
          dev.nodemesh.api.config.v1.Service.getDescriptor(),
          ResourceDecoder::service,
          ResourceKinds::everyNode,
          Comparator.comparing(MeshService::namespace).thenComparing(MeshService::name));

  /** Unordered: the snapshot sorts and indexes policies itself. */
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.AuthorizationPolicy, AuthorizationPolicy>
      AUTHORIZATION_POLICY =
          new ResourceKind<>(
              "AuthorizationPolicy",
              dev.nodemesh.api.config.v1.AuthorizationPolicy.class,
              dev.nodemesh.api.config.v1.AuthorizationPolicy.getDescriptor(),
              ResourceDecoder::authorizationPolicy,
              ResourceKinds::everyNode,
              null);

  /** Unordered: the snapshot sorts and indexes policies itself. */
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.PeerAuthentication, PeerAuthentication>
      PEER_AUTHENTICATION =
          new ResourceKind<>(
              "PeerAuthentication",
              dev.nodemesh.api.config.v1.PeerAuthentication.class,
              dev.nodemesh.api.config.v1.PeerAuthentication.getDescriptor(),
              ResourceDecoder::peerAuthentication,
              ResourceKinds::everyNode,
              null);

  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpRoute, HttpRoute> HTTP_ROUTE =
      new ResourceKind<>(
          "HttpRoute",
          dev.nodemesh.api.config.v1.HttpRoute.class,
          dev.nodemesh.api.config.v1.HttpRoute.getDescriptor(),
          ResourceDecoder::httpRoute,
          ResourceKinds::everyNode,
          Comparator.comparing(HttpRoute::namespace)
              .thenComparing(HttpRoute::name)
              .thenComparing(HttpRoute::grpc));

  /** Unordered: the snapshot indexes traffic policies by target. */
  public static final ResourceKind<dev.nodemesh.api.config.v1.TrafficPolicy, TrafficPolicy>
      TRAFFIC_POLICY =
          new ResourceKind<>(
              "TrafficPolicy",
              dev.nodemesh.api.config.v1.TrafficPolicy.class,
              dev.nodemesh.api.config.v1.TrafficPolicy.getDescriptor(),
              ResourceDecoder::trafficPolicy,
              ResourceKinds::everyNode,
              null);

  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpFault, HttpFault> HTTP_FAULT =
      new ResourceKind<>(
          "HttpFault",
          dev.nodemesh.api.config.v1.HttpFault.class,
          dev.nodemesh.api.config.v1.HttpFault.getDescriptor(),
          ResourceDecoder::httpFault,
          ResourceKinds::everyNode,
          Comparator.comparing(HttpFault::namespace).thenComparing(HttpFault::name));

  /** Every kind, in the order a node subscribes to them. */
  public static final List<ResourceKind<?, ?>> ALL =
      List.of(
          WORKLOAD,
          SERVICE,
          AUTHORIZATION_POLICY,
          PEER_AUTHENTICATION,
          HTTP_ROUTE,
          TRAFFIC_POLICY,
          HTTP_FAULT);

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
   * The snapshot of every kind's values: each kind's slot in the snapshot.
   *
   * @throws IllegalArgumentException when the values are inconsistent across kinds
   */
  public static ConfigSnapshot snapshot(long version, Values values) {
    return new ConfigSnapshot(
        version,
        values.of(WORKLOAD),
        values.of(SERVICE),
        values.of(AUTHORIZATION_POLICY),
        values.of(PEER_AUTHENTICATION),
        values.of(HTTP_ROUTE),
        values.of(TRAFFIC_POLICY),
        values.of(HTTP_FAULT));
  }
}
