package dev.nodemesh.proxy.xds;

import com.google.protobuf.InvalidProtocolBufferException;
import com.google.protobuf.Message;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
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
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.RejectedExecutionException;
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
 * <p>The first config is applied whole: until every subscribed kind has had its first response (an
 * empty one for a kind with no resources), responses are validated, held and ACKed but not swapped
 * in, so a proxy never serves services without their policies. Then the snapshot of all of them is
 * swapped in at once, as Envoy's initial fetch does. The wait is bounded by {@code
 * initialFetchTimeout} (Envoy's {@code initial_fetch_timeout}), counted from the first connect:
 * when it expires, the kinds that did arrive are applied with the missing ones empty, logged at
 * ERROR with the missing type URLs and reported to {@link Listener#initialFetchTimedOut}. That is
 * for version skew: an older control plane that does not serve a kind this proxy subscribes to
 * never answers for it. If nothing at all has arrived by then (the control plane is unreachable or
 * answers nothing), nothing is applied (the previous snapshot stays: a saved one, or none, which
 * refuses connections to pods here); the next valid response is then applied at once, with the
 * other kinds empty. With a zero timeout the wait has no bound. After the first config each
 * response is applied on its own.
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

  /** What the proxy hears from the client (logs, metrics); called on the client's executor. */
  public interface Listener {
    default void accepted(ConfigSnapshot snapshot) {}

    /**
     * As {@link #accepted(ConfigSnapshot)}, with every resource the snapshot was built from as the
     * control plane sent it, per type URL (what the proxy saves on the node).
     */
    default void accepted(ConfigSnapshot snapshot, Map<String, List<Resource>> resources) {
      accepted(snapshot);
    }

    default void rejected(String reasons) {}

    default void connectionLost(@Nullable Throwable cause, long reconnectInNanos) {}

    /**
     * The initial fetch timed out and the first config was applied without these kinds (type URLs),
     * as if they had none.
     */
    default void initialFetchTimedOut(List<String> missingTypeUrls) {}
  }

  /**
   * One accepted resource: the version the control plane gave it, what it decoded to, and whether
   * it goes into this node's snapshot ({@link ResourceKind#servesNode}).
   */
  private record Held<T>(String version, T value, boolean servesNode, Resource wire) {}

  private final Channel channel;
  private final String nodeName;
  private final SnapshotHolder snapshots;
  private final ScheduledExecutorService executor;
  private final Backoff backoff;
  private final Listener listener;
  private final Duration initialFetchTimeout;

  // Everything below is touched only on the executor.
  // Per kind (every one of ResourceKinds.ALL), the accepted resources by name; a map of a kind R
  // holds only Held<R>. Replaced whole when a response is accepted.
  private Map<ResourceKind<?, ?>, Map<String, Held<?>>> held = emptyHeld();
  private @Nullable StreamObserver<DeltaDiscoveryRequest> requests;
  private @Nullable ScheduledFuture<?> reconnect;
  // Type URLs still waiting for their first response; the first snapshot is swapped in when empty.
  private final Set<String> awaitingFirst = new LinkedHashSet<>();
  private int generation;
  private boolean closed;
  private @Nullable ScheduledFuture<?> initialFetchTimer;
  // The initial fetch timed out before anything arrived: the next valid response is applied alone.
  private boolean initialFetchExpired;
  private volatile long version;
  private volatile boolean initialSyncDone;
  private volatile boolean connected;

  public XdsClient(
      Channel channel,
      String nodeName,
      SnapshotHolder snapshots,
      ScheduledExecutorService executor,
      Backoff backoff,
      Listener listener) {
    this(channel, nodeName, snapshots, executor, backoff, listener, Duration.ZERO);
  }

  /**
   * As above, with the first config's wait for every kind bounded by {@code initialFetchTimeout}
   * (zero: unbounded), scheduled on {@code executor} (the injected clock).
   */
  public XdsClient(
      Channel channel,
      String nodeName,
      SnapshotHolder snapshots,
      ScheduledExecutorService executor,
      Backoff backoff,
      Listener listener,
      Duration initialFetchTimeout) {
    if (initialFetchTimeout.isNegative()) {
      throw new IllegalArgumentException("negative initial fetch timeout");
    }
    this.initialFetchTimeout = initialFetchTimeout;
    this.channel = channel;
    this.nodeName = nodeName;
    this.snapshots = snapshots;
    this.executor = executor;
    this.backoff = backoff;
    this.listener = listener;
    // Versions go on from the snapshot in force (a saved one, loaded at start), so the version
    // gauge never steps back.
    this.version = snapshots.current().version();
    ResourceKinds.ALL.forEach(k -> awaitingFirst.add(k.typeUrl()));
  }

  private static Map<String, Held<?>> heldOf(
      Map<ResourceKind<?, ?>, Map<String, Held<?>>> held, ResourceKind<?, ?> kind) {
    return Objects.requireNonNull(held.get(kind), "every kind has its map (see emptyHeld)");
  }

  private static Map<ResourceKind<?, ?>, Map<String, Held<?>>> emptyHeld() {
    Map<ResourceKind<?, ?>, Map<String, Held<?>>> m = new HashMap<>();
    ResourceKinds.ALL.forEach(k -> m.put(k, new HashMap<>()));
    return m;
  }

  /** Opens the stream (asynchronously); later losses reconnect by themselves until close. */
  public void start() {
    executor.execute(this::connect);
  }

  /**
   * The version of the snapshot this client last swapped in: the version in force when it was made
   * (0, or a saved snapshot's) plus the number of updates accepted since.
   */
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
          cancelInitialFetchTimer();
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
    if (!initialSyncDone
        && initialFetchTimer == null
        && !initialFetchExpired
        && !initialFetchTimeout.isZero()) {
      // Once, from the first connect: reconnects do not restart the bound.
      initialFetchTimer =
          executor.schedule(
              this::initialFetchTimedOut, initialFetchTimeout.toNanos(), TimeUnit.NANOSECONDS);
    }
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
    for (ResourceKind<?, ?> kind : ResourceKinds.ALL) {
      r.onNext(subscribe(node, kind.typeUrl(), heldOf(held, kind)));
    }
  }

  /** Runs on the executor unless the stream it belongs to has been replaced or closed. */
  private void onExecutor(int gen, Runnable task) {
    try {
      executor.execute(
          () -> {
            if (gen == generation && !closed) {
              task.run();
            }
          });
    } catch (RejectedExecutionException stopped) {
      // The executor is shut down (the proxy is stopping): the task would have been skipped as
      // closed anyway, and gRPC would log the exception as a warning at every shutdown.
    }
  }

  private static DeltaDiscoveryRequest subscribe(
      Node node, String typeUrl, Map<String, Held<?>> held) {
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
        "control plane stream lost ({}); keeping config version {}{}, reconnecting in {} ms",
        cause == null ? "closed by server" : Status.fromThrowable(cause),
        version,
        initialSyncDone() ? "" : " (initial sync still waiting for " + awaitingFirst + ")",
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
    Map<ResourceKind<?, ?>, Map<String, Held<?>>> nextHeld = held;
    ResourceKind<?, ?> kind = ResourceKinds.ofTypeUrl(type);
    if (kind != null) {
      Map<String, Held<?>> changed = new HashMap<>(heldOf(held, kind));
      apply(kind, response, new ResourceDecoder(errors), changed, errors);
      nextHeld = new HashMap<>(held);
      nextHeld.put(kind, changed);
    } else {
      errors.add("type " + type + " was not subscribed to");
    }
    ConfigSnapshot next = null;
    if (errors.isEmpty() && kind != null && !initialSyncDone() && !initialFetchExpired) {
      Set<String> still = new LinkedHashSet<>(awaitingFirst);
      still.remove(kind.typeUrl());
      if (!still.isEmpty()) {
        // Valid, so held and ACKed, but not in force before every kind has come (see above).
        held = nextHeld;
        awaitingFirst.remove(kind.typeUrl());
        log.info("initial config sync: {} received, waiting for {}", kind, still);
        r.onNext(
            DeltaDiscoveryRequest.newBuilder()
                .setTypeUrl(type)
                .setResponseNonce(response.getNonce())
                .build());
        return;
      }
    }
    if (errors.isEmpty()
        && kind != null
        && initialSyncDone
        && response.getResourcesCount() == 0
        && response.getRemovedResourcesCount() == 0) {
      // Nothing changes (a control plane's empty answer to a re-subscription of a kind with no
      // resources): ACKed, and the snapshot in force stays, version and all.
      r.onNext(
          DeltaDiscoveryRequest.newBuilder()
              .setTypeUrl(type)
              .setResponseNonce(response.getNonce())
              .build());
      return;
    }
    if (errors.isEmpty()) {
      try {
        next = build(version + 1, nextHeld);
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
    held = nextHeld;
    if (!initialSyncDone && kind != null) {
      awaitingFirst.remove(kind.typeUrl());
      if (!awaitingFirst.isEmpty()) {
        // Only after an expired initial fetch that had nothing to apply (see the class comment).
        missingAtFirstConfig();
      }
    }
    firstConfigDone();
    version = next.version();
    snapshots.swap(next);
    r.onNext(reply.build());
    listener.accepted(next, wire(nextHeld));
  }

  private void firstConfigDone() {
    awaitingFirst.clear();
    initialSyncDone = true;
    cancelInitialFetchTimer();
  }

  private void cancelInitialFetchTimer() {
    ScheduledFuture<?> t = initialFetchTimer;
    initialFetchTimer = null;
    if (t != null) {
      t.cancel(false);
    }
  }

  /**
   * The bound on the first config's wait has passed: what arrived is applied, the missing kinds
   * empty. With nothing arrived, the next valid response will be (nothing proves the control plane
   * answers at all, and an empty config would replace a saved one with nothing).
   */
  private void initialFetchTimedOut() {
    initialFetchTimer = null;
    if (closed || initialSyncDone) {
      return;
    }
    initialFetchExpired = true;
    if (awaitingFirst.size() == ResourceKinds.ALL.size()) {
      log.error(
          "initial config fetch timed out after {}: nothing received from the control plane yet;"
              + " the first valid response will be applied at once, the kinds still missing"
              + " empty: {}",
          initialFetchTimeout,
          awaitingFirst);
      return;
    }
    ConfigSnapshot next;
    try {
      next = build(version + 1, held);
    } catch (IllegalArgumentException e) {
      // Each kind was valid alone; together they are not. The next response is tried again.
      log.error(
          "initial config fetch timed out after {} waiting for {}; what arrived is inconsistent"
              + " without them, version {} stays: {}",
          initialFetchTimeout,
          awaitingFirst,
          version,
          e.getMessage());
      return;
    }
    missingAtFirstConfig();
    firstConfigDone();
    version = next.version();
    snapshots.swap(next);
    listener.accepted(next, wire(held));
  }

  /** Logs and reports the kinds the first config goes without. */
  private void missingAtFirstConfig() {
    List<String> missing = List.copyOf(awaitingFirst);
    log.error(
        "initial config fetch timed out after {}: applying the first config WITHOUT {} (treated as"
            + " empty; an older control plane that does not serve them?)",
        initialFetchTimeout,
        missing);
    listener.initialFetchTimedOut(missing);
  }

  /** True once the first snapshot of every subscribed kind together has been swapped in. */
  public boolean initialSyncDone() {
    return initialSyncDone;
  }

  private static Map<String, List<Resource>> wire(
      Map<ResourceKind<?, ?>, Map<String, Held<?>>> held) {
    Map<String, List<Resource>> out = new HashMap<>();
    held.forEach(
        (kind, byName) -> {
          List<Resource> list = new ArrayList<>(byName.size());
          byName.values().forEach(h -> list.add(h.wire()));
          out.put(kind.typeUrl(), list);
        });
    return out;
  }

  /** Decodes a response's resources of one kind into {@code into}, and removes its removals. */
  private <P extends Message, R> void apply(
      ResourceKind<P, R> kind,
      DeltaDiscoveryResponse response,
      ResourceDecoder decoder,
      Map<String, Held<?>> into,
      List<String> errors) {
    for (Resource res : response.getResourcesList()) {
      P proto = unpack(res, kind.protoType(), errors);
      R value = proto == null ? null : kind.decode(decoder, res.getName(), proto);
      if (proto != null && value != null) {
        into.put(
            res.getName(),
            new Held<>(res.getVersion(), value, kind.servesNode(proto, nodeName), res));
      }
    }
    response.getRemovedResourcesList().forEach(into::remove);
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

  private static ConfigSnapshot build(
      long nextVersion, Map<ResourceKind<?, ?>, Map<String, Held<?>>> nextHeld) {
    return ResourceKinds.snapshot(
        nextVersion,
        new ResourceKinds.Values() {
          @Override
          @SuppressWarnings("unchecked") // the map of kind R holds only Held<R> (see apply)
          public <R> List<R> of(ResourceKind<?, R> kind) {
            List<R> values = new ArrayList<>();
            for (Held<?> h : heldOf(nextHeld, kind).values()) {
              if (h.servesNode()) {
                values.add((R) h.value());
              }
            }
            return kind.ordered(values);
          }
        });
  }
}
