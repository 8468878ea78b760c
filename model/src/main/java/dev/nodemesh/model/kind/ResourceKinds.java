package dev.nodemesh.model.kind;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.TrafficPolicyParser;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.config.parse.AuthorizationPolicyParser;
import dev.nodemesh.model.config.parse.GrpcRouteParser;
import dev.nodemesh.model.config.parse.HttpFaultParser;
import dev.nodemesh.model.config.parse.HttpRouteParser;
import dev.nodemesh.model.config.parse.PeerAuthenticationParser;
import dev.nodemesh.model.config.parse.ReferenceGrantParser;
import dev.nodemesh.model.config.parse.ServiceParser;
import dev.nodemesh.model.config.parse.WorkloadParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoEncoder;
import dev.nodemesh.model.proto.ResourceDecoder;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The registry of resource kinds: the one place that lists them. {@link #ALL} are the wire kinds
 * (type URL, encode, decode, node filter, snapshot slot: {@link ResourceKind}); {@link Yaml#ALL}
 * are the Kubernetes kinds read from YAML and the API server ({@link YamlKind}), each feeding a
 * wire kind or an input-only slot ({@link #REFERENCE_GRANTS}). A new plain kind is its proto, its
 * record with its parser, an encoder and a decoder method, its slot in {@link ConfigSnapshot}, and
 * one entry in each list here (with its slot in {@link #snapshot}); {@code ResourceKindsTest} fails
 * until all of them are there.
 */
public final class ResourceKinds {
  private ResourceKinds() {}

  /**
   * ReferenceGrants: read by every source, never sent; a route's cross-namespace backendRefs are
   * resolved against them before the route is pushed, so proxies need none of their own.
   */
  public static final InputSlot<ReferenceGrant> REFERENCE_GRANTS =
      new InputSlot<>("ReferenceGrant");

  public static final ResourceKind<dev.nodemesh.api.config.v1.Workload, Workload> WORKLOAD =
      ResourceKind.<dev.nodemesh.api.config.v1.Workload, Workload>builder(
              "Workload",
              dev.nodemesh.api.config.v1.Workload.class,
              dev.nodemesh.api.config.v1.Workload.getDescriptor())
          .decode(ResourceDecoder::workload)
          // Ready: the loader and local mode have no readiness; the Kubernetes source encodes
          // its pods' readiness itself (ProtoEncoder.workload).
          .encode(w -> ProtoEncoder.workload(w, true))
          .servesNode((proto, nodeName) -> proto.getReady() || proto.getNode().equals(nodeName))
          .order(Comparator.comparing(Workload::namespace).thenComparing(Workload::name))
          .inSnapshot(ConfigSnapshot::workloads)
          .build();

  public static final ResourceKind<dev.nodemesh.api.config.v1.Service, MeshService> SERVICE =
      ResourceKind.<dev.nodemesh.api.config.v1.Service, MeshService>builder(
              "Service",
              dev.nodemesh.api.config.v1.Service.class,
              dev.nodemesh.api.config.v1.Service.getDescriptor())
          .decode(ResourceDecoder::service)
          // Without EndpointSlices (the Kubernetes source adds them itself).
          .encode(s -> ProtoEncoder.service(s, Set.of()))
          .order(Comparator.comparing(MeshService::namespace).thenComparing(MeshService::name))
          .inSnapshot(ConfigSnapshot::services)
          .build();

  /** Unordered: the snapshot sorts and indexes policies itself. */
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.AuthorizationPolicy, AuthorizationPolicy>
      AUTHORIZATION_POLICY =
          ResourceKind.<dev.nodemesh.api.config.v1.AuthorizationPolicy, AuthorizationPolicy>builder(
                  "AuthorizationPolicy",
                  dev.nodemesh.api.config.v1.AuthorizationPolicy.class,
                  dev.nodemesh.api.config.v1.AuthorizationPolicy.getDescriptor())
              .decode(ResourceDecoder::authorizationPolicy)
              .encode(ProtoEncoder::authorizationPolicy)
              .inSnapshot(ConfigSnapshot::authorizationPolicies)
              .build();

  /** Unordered: the snapshot sorts and indexes policies itself. */
  public static final ResourceKind<
          dev.nodemesh.api.config.v1.PeerAuthentication, PeerAuthentication>
      PEER_AUTHENTICATION =
          ResourceKind.<dev.nodemesh.api.config.v1.PeerAuthentication, PeerAuthentication>builder(
                  "PeerAuthentication",
                  dev.nodemesh.api.config.v1.PeerAuthentication.class,
                  dev.nodemesh.api.config.v1.PeerAuthentication.getDescriptor())
              .decode(ResourceDecoder::peerAuthentication)
              .encode(ProtoEncoder::peerAuthentication)
              .inSnapshot(ConfigSnapshot::peerAuthentications)
              .build();

  /** HTTPRoutes and GRPCRoutes ({@link HttpRoute#grpc()}). */
  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpRoute, HttpRoute> HTTP_ROUTE =
      ResourceKind.<dev.nodemesh.api.config.v1.HttpRoute, HttpRoute>builder(
              "HttpRoute",
              dev.nodemesh.api.config.v1.HttpRoute.class,
              dev.nodemesh.api.config.v1.HttpRoute.getDescriptor())
          .decode(ResourceDecoder::httpRoute)
          .encode(ProtoEncoder::httpRoute)
          .resolve((r, in) -> ReferenceGrant.apply(r, in.of(REFERENCE_GRANTS)), REFERENCE_GRANTS)
          .order(
              Comparator.comparing(HttpRoute::namespace)
                  .thenComparing(HttpRoute::name)
                  .thenComparing(HttpRoute::grpc))
          .inSnapshot(ConfigSnapshot::httpRoutes)
          .build();

  /** Unordered: the snapshot indexes traffic policies by target. */
  public static final ResourceKind<dev.nodemesh.api.config.v1.TrafficPolicy, TrafficPolicy>
      TRAFFIC_POLICY =
          ResourceKind.<dev.nodemesh.api.config.v1.TrafficPolicy, TrafficPolicy>builder(
                  "TrafficPolicy",
                  dev.nodemesh.api.config.v1.TrafficPolicy.class,
                  dev.nodemesh.api.config.v1.TrafficPolicy.getDescriptor())
              .decode(ResourceDecoder::trafficPolicy)
              .encode(ProtoEncoder::trafficPolicy)
              .inSnapshot(ConfigSnapshot::trafficPolicies)
              .build();

  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpFault, HttpFault> HTTP_FAULT =
      ResourceKind.<dev.nodemesh.api.config.v1.HttpFault, HttpFault>builder(
              "HttpFault",
              dev.nodemesh.api.config.v1.HttpFault.class,
              dev.nodemesh.api.config.v1.HttpFault.getDescriptor())
          .decode(ResourceDecoder::httpFault)
          .encode(ProtoEncoder::httpFault)
          .order(Comparator.comparing(HttpFault::namespace).thenComparing(HttpFault::name))
          .inSnapshot(ConfigSnapshot::httpFaults)
          .build();

  /** Every wire kind, in the order a node subscribes to them. */
  public static final List<ResourceKind<?, ?>> ALL =
      List.of(
          WORKLOAD,
          SERVICE,
          AUTHORIZATION_POLICY,
          PEER_AUTHENTICATION,
          HTTP_ROUTE,
          TRAFFIC_POLICY,
          HTTP_FAULT);

  /** Every slot a YAML kind can feed: the wire kinds, then the input-only ones. */
  public static final List<Slot<?>> SLOTS = slots();

  private static List<Slot<?>> slots() {
    List<Slot<?>> all = new ArrayList<>(ALL);
    all.add(REFERENCE_GRANTS);
    return List.copyOf(all);
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
   * The snapshot of every kind's values: each kind's slot in the snapshot (the write side; {@link
   * ResourceKind#in} is the read side).
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

  /** The Kubernetes kinds: what the loader and the sources read, and which slot each feeds. */
  public static final class Yaml {
    private Yaml() {}

    private static final String SECURITY_GROUP = "security.nodemesh.dev";
    private static final String TRAFFIC_GROUP = "traffic.nodemesh.dev";
    private static final String GATEWAY_GROUP = ReferenceGrant.GATEWAY_GROUP;

    private static String plainName(NamespacedName id) {
      return ProtoEncoder.name(id.namespace(), id.name());
    }

    public static final YamlKind<Workload> POD =
        new YamlKind<>(
            "Pod",
            "",
            "v1",
            "pods",
            ApiVersions.ANY,
            true,
            (file, errors, doc, label) -> new WorkloadParser(file, errors).parse(doc, label),
            WORKLOAD,
            Workload::id,
            Yaml::plainName);

    public static final YamlKind<MeshService> SERVICE =
        new YamlKind<>(
            "Service",
            "",
            "v1",
            "services",
            ApiVersions.ANY,
            true,
            (file, errors, doc, label) -> new ServiceParser(file, errors).parse(doc, label),
            ResourceKinds.SERVICE,
            MeshService::id,
            Yaml::plainName);

    /** Istio's kind of the same name (security.istio.io) is not ours: ignored like any other. */
    public static final YamlKind<AuthorizationPolicy> AUTHORIZATION_POLICY =
        new YamlKind<>(
            "AuthorizationPolicy",
            SECURITY_GROUP,
            "v1alpha1",
            "authorizationpolicies",
            ApiVersions.EXACT,
            true,
            (file, errors, doc, label) ->
                new AuthorizationPolicyParser(file, errors).parse(doc, label),
            ResourceKinds.AUTHORIZATION_POLICY,
            AuthorizationPolicy::id,
            Yaml::plainName);

    public static final YamlKind<PeerAuthentication> PEER_AUTHENTICATION =
        new YamlKind<>(
            "PeerAuthentication",
            SECURITY_GROUP,
            "v1alpha1",
            "peerauthentications",
            ApiVersions.EXACT,
            true,
            (file, errors, doc, label) ->
                new PeerAuthenticationParser(file, errors).parse(doc, label),
            ResourceKinds.PEER_AUTHENTICATION,
            PeerAuthentication::id,
            Yaml::plainName);

    public static final YamlKind<HttpRoute> HTTP_ROUTE =
        new YamlKind<>(
            "HTTPRoute",
            GATEWAY_GROUP,
            "v1",
            "httproutes",
            ApiVersions.GROUP,
            false,
            (file, errors, doc, label) -> new HttpRouteParser(file, errors).parse(doc, label),
            ResourceKinds.HTTP_ROUTE,
            HttpRoute::id,
            id -> ProtoEncoder.routeName(id.namespace(), id.name(), false));

    /**
     * Sent as an {@code HttpRoute} with {@code grpc} set, under {@code GRPCRoute/<ns>/<name>} so a
     * GRPCRoute and an HTTPRoute of the same name do not replace each other.
     */
    public static final YamlKind<HttpRoute> GRPC_ROUTE =
        new YamlKind<>(
            "GRPCRoute",
            GATEWAY_GROUP,
            "v1",
            "grpcroutes",
            ApiVersions.GROUP,
            false,
            (file, errors, doc, label) -> new GrpcRouteParser(file, errors).parse(doc, label),
            ResourceKinds.HTTP_ROUTE,
            HttpRoute::id,
            id -> ProtoEncoder.routeName(id.namespace(), id.name(), true));

    public static final YamlKind<TrafficPolicy> TRAFFIC_POLICY =
        new YamlKind<>(
            "TrafficPolicy",
            TRAFFIC_GROUP,
            "v1alpha1",
            "trafficpolicies",
            ApiVersions.EXACT,
            false,
            (file, errors, doc, label) -> new TrafficPolicyParser(file, errors).parse(doc, label),
            ResourceKinds.TRAFFIC_POLICY,
            TrafficPolicy::id,
            Yaml::plainName);

    public static final YamlKind<HttpFault> HTTP_FAULT =
        new YamlKind<>(
            "HTTPFault",
            TRAFFIC_GROUP,
            "v1alpha1",
            "httpfaults",
            ApiVersions.GROUP,
            false,
            (file, errors, doc, label) -> new HttpFaultParser(file, errors).parse(doc, label),
            ResourceKinds.HTTP_FAULT,
            HttpFault::id,
            Yaml::plainName);

    public static final YamlKind<ReferenceGrant> REFERENCE_GRANT =
        new YamlKind<>(
            "ReferenceGrant",
            GATEWAY_GROUP,
            "v1beta1",
            "referencegrants",
            ApiVersions.GROUP,
            false,
            (file, errors, doc, label) -> new ReferenceGrantParser(file, errors).parse(doc, label),
            REFERENCE_GRANTS,
            ReferenceGrant::id,
            Yaml::plainName);

    /** Every Kubernetes kind the mesh reads. */
    public static final List<YamlKind<?>> ALL =
        List.of(
            POD,
            SERVICE,
            AUTHORIZATION_POLICY,
            PEER_AUTHENTICATION,
            HTTP_ROUTE,
            GRPC_ROUTE,
            TRAFFIC_POLICY,
            HTTP_FAULT,
            REFERENCE_GRANT);

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
}
