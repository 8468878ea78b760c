package dev.nodemesh.proxy.xds;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.proto.ResourceDecoder;
import dev.nodemesh.proxy.config.SnapshotHolder;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.StreamObserver;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a node proxy's {@link SnapshotHolder} in step with the control plane over one delta ADS
 * stream, subscribed as a wildcard to Workloads, Services, AuthorizationPolicies,
 * PeerAuthentications, HttpRoutes (HTTPRoutes and GRPCRoutes), TrafficPolicies and HttpFaults.
 *
 * <p>Each response is applied whole or not at all: every resource is decoded and validated, the
 * next snapshot is built from the result (which checks rules across resources, like unique IPs),
 * and only then swapped in and ACKed. Any problem NACKs the response with every reason joined in
 * {@code error_detail}, and the previous snapshot stays. While the control plane is away the last
 * accepted snapshot keeps serving; the client reconnects with jittered exponential backoff and
 * sends the versions it holds ({@code initial_resource_versions}) so only differences come back.
 *
 * <p>Threading: every state change runs on {@code executor}, which must run one task at a time (a
 * single-thread scheduler in production, a manually stepped one in tests); gRPC callbacks only hop
 * onto it. The executor and the backoff's random source are the injected clock.
 *
 * <p>Limits: a workload that is not ready is left out of the snapshot unless it runs on this node
 * (inbound traffic still needs to find it), so a local not-ready pod still gets local traffic.
 */
public final class XdsClient implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(XdsClient.class);

  public static final String WORKLOAD_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.Workload.getDescriptor().getFullName());
  public static final String SERVICE_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.Service.getDescriptor().getFullName());
  public static final String AUTHORIZATION_POLICY_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.AuthorizationPolicy.getDescriptor().getFullName());
  public static final String PEER_AUTHENTICATION_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.PeerAuthentication.getDescriptor().getFullName());
  public static final String HTTP_ROUTE_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.HttpRoute.getDescriptor().getFullName());
  public static final String TRAFFIC_POLICY_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.TrafficPolicy.getDescriptor().getFullName());
  public static final String HTTP_FAULT_TYPE =
      typeUrl(dev.nodemesh.api.config.v1.HttpFault.getDescriptor().getFullName());

  /** What the proxy hears from the client (logs, metrics); called on the client's executor. */
  public interface Listener {
    default void accepted(ConfigSnapshot snapshot) {}

    default void rejected(String reasons) {}

    default void connectionLost(@Nullable Throwable cause, long reconnectInNanos) {}
  }

  /** One accepted resource: the version the control plane gave it and what it decoded to. */
  private record Held<T>(String version, T value, boolean ready, String node) {}

  private final Channel channel;
  private final String nodeName;
  private final SnapshotHolder snapshots;
  private final ScheduledExecutorService executor;
  private final Backoff backoff;
  private final Listener listener;

  // Everything below is touched only on the executor.
  private Map<String, Held<Workload>> workloads = new HashMap<>();
  private Map<String, Held<MeshService>> services = new HashMap<>();
  private Map<String, Held<AuthorizationPolicy>> policies = new HashMap<>();
  private Map<String, Held<PeerAuthentication>> peerAuthns = new HashMap<>();
  private Map<String, Held<HttpRoute>> routes = new HashMap<>();
  private Map<String, Held<dev.nodemesh.model.config.TrafficPolicy>> trafficPolicies =
      new HashMap<>();
  private Map<String, Held<HttpFault>> faults = new HashMap<>();
  private @Nullable StreamObserver<DeltaDiscoveryRequest> requests;
  private @Nullable ScheduledFuture<?> reconnect;
  private int generation;
  private boolean closed;
  private volatile long version;
  private volatile boolean connected;

  public XdsClient(
      Channel channel,
      String nodeName,
      SnapshotHolder snapshots,
      ScheduledExecutorService executor,
      Backoff backoff,
      Listener listener) {
    this.channel = channel;
    this.nodeName = nodeName;
    this.snapshots = snapshots;
    this.executor = executor;
    this.backoff = backoff;
    this.listener = listener;
  }

  static String typeUrl(String fullName) {
    return "type.googleapis.com/" + fullName;
  }

  /** Opens the stream (asynchronously); later losses reconnect by themselves until close. */
  public void start() {
    executor.execute(this::connect);
  }

  /** Number of updates accepted so far; also the version of the snapshot this client swapped in. */
  public long version() {
    return version;
  }

  /**
   * True while the stream is open on a live connection to the control plane (from gRPC's first
   * "ready" or the first response, to the stream's loss); false while reconnecting, so a control
   * plane that cannot be reached reads false even during an attempt.
   */
  public boolean connected() {
    return connected;
  }

  @Override
  public void close() {
    executor.execute(
        () -> {
          closed = true;
          if (reconnect != null) {
            reconnect.cancel(false);
          }
          StreamObserver<DeltaDiscoveryRequest> r = requests;
          requests = null;
          connected = false;
          if (r != null) {
            r.onError(Status.CANCELLED.withDescription("node proxy closing").asException());
          }
        });
  }

  private void connect() {
    reconnect = null;
    if (closed) {
      return;
    }
    int gen = ++generation;
    StreamObserver<DeltaDiscoveryRequest> r =
        AggregatedDiscoveryServiceGrpc.newStub(channel)
            .deltaAggregatedResources(
                new ClientResponseObserver<DeltaDiscoveryRequest, DeltaDiscoveryResponse>() {
                  @Override
                  public void beforeStart(ClientCallStreamObserver<DeltaDiscoveryRequest> call) {
                    // Ready = the stream exists on a live connection to the control plane; a
                    // target that cannot be reached fails the call without ever getting here.
                    call.setOnReadyHandler(() -> onExecutor(gen, () -> connected = true));
                  }

                  @Override
                  public void onNext(DeltaDiscoveryResponse response) {
                    onExecutor(gen, () -> onResponse(response));
                  }

                  @Override
                  public void onError(Throwable t) {
                    onExecutor(gen, () -> streamEnded(t));
                  }

                  @Override
                  public void onCompleted() {
                    onExecutor(gen, () -> streamEnded(null));
                  }
                });
    requests = r;
    Node node = Node.newBuilder().setId(nodeName).setCluster("nodemesh").build();
    r.onNext(subscribe(node, WORKLOAD_TYPE, workloads));
    r.onNext(subscribe(node, SERVICE_TYPE, services));
    r.onNext(subscribe(node, AUTHORIZATION_POLICY_TYPE, policies));
    r.onNext(subscribe(node, PEER_AUTHENTICATION_TYPE, peerAuthns));
    r.onNext(subscribe(node, HTTP_ROUTE_TYPE, routes));
    r.onNext(subscribe(node, TRAFFIC_POLICY_TYPE, trafficPolicies));
    r.onNext(subscribe(node, HTTP_FAULT_TYPE, faults));
  }

  /** Runs on the executor unless the stream it belongs to has been replaced or closed. */
  private void onExecutor(int gen, Runnable task) {
    executor.execute(
        () -> {
          if (gen == generation && !closed) {
            task.run();
          }
        });
  }

  private static DeltaDiscoveryRequest subscribe(
      Node node, String typeUrl, Map<String, ? extends Held<?>> held) {
    DeltaDiscoveryRequest.Builder b = DeltaDiscoveryRequest.newBuilder().setNode(node);
    b.setTypeUrl(typeUrl);
    held.forEach((name, h) -> b.putInitialResourceVersions(name, h.version()));
    return b.build();
  }

  private void streamEnded(@Nullable Throwable cause) {
    requests = null;
    connected = false;
    long delay = backoff.nextDelayNanos();
    log.warn(
        "control plane stream lost ({}); keeping config version {}, reconnecting in {} ms",
        cause == null ? "closed by server" : Status.fromThrowable(cause),
        version,
        TimeUnit.NANOSECONDS.toMillis(delay));
    listener.connectionLost(cause, delay);
    reconnect = executor.schedule(this::connect, delay, TimeUnit.NANOSECONDS);
  }

  private void onResponse(DeltaDiscoveryResponse response) {
    backoff.reset();
    connected = true;
    StreamObserver<DeltaDiscoveryRequest> r = requests;
    if (r == null) {
      return;
    }
    String type = response.getTypeUrl();
    List<String> errors = new ArrayList<>();
    Map<String, Held<Workload>> nextWorkloads = workloads;
    Map<String, Held<MeshService>> nextServices = services;
    Map<String, Held<AuthorizationPolicy>> nextPolicies = policies;
    Map<String, Held<PeerAuthentication>> nextPeerAuthns = peerAuthns;
    Map<String, Held<HttpRoute>> nextRoutes = routes;
    Map<String, Held<dev.nodemesh.model.config.TrafficPolicy>> nextTraffic = trafficPolicies;
    Map<String, Held<HttpFault>> nextFaults = faults;
    ResourceDecoder decoder = new ResourceDecoder(errors);
    if (type.equals(WORKLOAD_TYPE)) {
      nextWorkloads = new HashMap<>(workloads);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.Workload.class, errors);
        Workload w = proto == null ? null : decoder.workload(res.getName(), proto);
        if (proto != null && w != null) {
          nextWorkloads.put(
              res.getName(), new Held<>(res.getVersion(), w, proto.getReady(), proto.getNode()));
        }
      }
      response.getRemovedResourcesList().forEach(nextWorkloads::remove);
    } else if (type.equals(SERVICE_TYPE)) {
      nextServices = new HashMap<>(services);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.Service.class, errors);
        MeshService s = proto == null ? null : decoder.service(res.getName(), proto);
        if (s != null) {
          nextServices.put(res.getName(), new Held<>(res.getVersion(), s, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextServices::remove);
    } else if (type.equals(AUTHORIZATION_POLICY_TYPE)) {
      nextPolicies = new HashMap<>(policies);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.AuthorizationPolicy.class, errors);
        AuthorizationPolicy p =
            proto == null ? null : decoder.authorizationPolicy(res.getName(), proto);
        if (p != null) {
          nextPolicies.put(res.getName(), new Held<>(res.getVersion(), p, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextPolicies::remove);
    } else if (type.equals(PEER_AUTHENTICATION_TYPE)) {
      nextPeerAuthns = new HashMap<>(peerAuthns);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.PeerAuthentication.class, errors);
        PeerAuthentication p =
            proto == null ? null : decoder.peerAuthentication(res.getName(), proto);
        if (p != null) {
          nextPeerAuthns.put(res.getName(), new Held<>(res.getVersion(), p, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextPeerAuthns::remove);
    } else if (type.equals(HTTP_ROUTE_TYPE)) {
      nextRoutes = new HashMap<>(routes);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.HttpRoute.class, errors);
        HttpRoute hr = proto == null ? null : decoder.httpRoute(res.getName(), proto);
        if (hr != null) {
          nextRoutes.put(res.getName(), new Held<>(res.getVersion(), hr, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextRoutes::remove);
    } else if (type.equals(TRAFFIC_POLICY_TYPE)) {
      nextTraffic = new HashMap<>(trafficPolicies);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.TrafficPolicy.class, errors);
        var tp = proto == null ? null : decoder.trafficPolicy(res.getName(), proto);
        if (tp != null) {
          nextTraffic.put(res.getName(), new Held<>(res.getVersion(), tp, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextTraffic::remove);
    } else if (type.equals(HTTP_FAULT_TYPE)) {
      nextFaults = new HashMap<>(faults);
      for (Resource res : response.getResourcesList()) {
        var proto = unpack(res, dev.nodemesh.api.config.v1.HttpFault.class, errors);
        HttpFault f = proto == null ? null : decoder.httpFault(res.getName(), proto);
        if (f != null) {
          nextFaults.put(res.getName(), new Held<>(res.getVersion(), f, true, ""));
        }
      }
      response.getRemovedResourcesList().forEach(nextFaults::remove);
    } else {
      errors.add("type " + type + " was not subscribed to");
    }
    ConfigSnapshot next = null;
    if (errors.isEmpty()) {
      try {
        next =
            build(
                version + 1,
                nextWorkloads,
                nextServices,
                nextPolicies,
                nextPeerAuthns,
                nextRoutes,
                values(nextTraffic),
                values(nextFaults));
      } catch (IllegalArgumentException e) {
        errors.add("the resulting config is inconsistent: " + e.getMessage());
      }
    }
    DeltaDiscoveryRequest.Builder reply =
        DeltaDiscoveryRequest.newBuilder().setTypeUrl(type).setResponseNonce(response.getNonce());
    if (next == null) {
      String reasons = String.join("; ", errors);
      log.warn("config update rejected, version {} stays: {}", version, reasons);
      reply.setErrorDetail(
          com.google.rpc.Status.newBuilder()
              .setCode(Status.Code.INVALID_ARGUMENT.value())
              .setMessage(reasons));
      r.onNext(reply.build());
      listener.rejected(reasons);
      return;
    }
    workloads = nextWorkloads;
    services = nextServices;
    policies = nextPolicies;
    peerAuthns = nextPeerAuthns;
    routes = nextRoutes;
    trafficPolicies = nextTraffic;
    faults = nextFaults;
    version = next.version();
    snapshots.swap(next);
    r.onNext(reply.build());
    listener.accepted(next);
  }

  private static <T> List<T> values(Map<String, Held<T>> held) {
    List<T> out = new ArrayList<>();
    held.values().forEach(h -> out.add(h.value()));
    return out;
  }

  private static <T extends Message> @Nullable T unpack(
      Resource res, Class<T> type, List<String> errors) {
    try {
      return res.getResource().unpack(type);
    } catch (InvalidProtocolBufferException e) {
      errors.add(
          res.getName()
              + ": not a "
              + type.getSimpleName()
              + " ("
              + res.getResource().getTypeUrl()
              + "): "
              + e.getMessage());
      return null;
    }
  }

  private ConfigSnapshot build(
      long nextVersion,
      Map<String, Held<Workload>> nextWorkloads,
      Map<String, Held<MeshService>> nextServices,
      Map<String, Held<AuthorizationPolicy>> nextPolicies,
      Map<String, Held<PeerAuthentication>> nextPeerAuthns,
      Map<String, Held<HttpRoute>> nextRoutes,
      List<dev.nodemesh.model.config.TrafficPolicy> trafficPolicies,
      List<HttpFault> httpFaults) {
    List<Workload> ws = new ArrayList<>();
    for (Held<Workload> h : nextWorkloads.values()) {
      if (h.ready() || h.node().equals(nodeName)) {
        ws.add(h.value());
      }
    }
    ws.sort(Comparator.comparing(Workload::namespace).thenComparing(Workload::name));
    List<MeshService> ss = new ArrayList<>();
    nextServices.values().forEach(h -> ss.add(h.value()));
    ss.sort(Comparator.comparing(MeshService::namespace).thenComparing(MeshService::name));
    List<AuthorizationPolicy> ps = new ArrayList<>();
    nextPolicies.values().forEach(h -> ps.add(h.value()));
    List<PeerAuthentication> pas = new ArrayList<>();
    nextPeerAuthns.values().forEach(h -> pas.add(h.value()));
    List<HttpRoute> rs = new ArrayList<>();
    nextRoutes.values().forEach(h -> rs.add(h.value()));
    rs.sort(
        Comparator.comparing(HttpRoute::namespace)
            .thenComparing(HttpRoute::name)
            .thenComparing(HttpRoute::grpc));
    List<HttpFault> fs = new ArrayList<>(httpFaults);
    fs.sort(Comparator.comparing(HttpFault::namespace).thenComparing(HttpFault::name));
    // the snapshot sorts policies
    return new ConfigSnapshot(nextVersion, ws, ss, ps, pas, rs, trafficPolicies, fs);
  }
}
