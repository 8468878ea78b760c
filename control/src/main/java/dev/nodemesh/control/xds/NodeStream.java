package dev.nodemesh.control.xds;

import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.control.store.VersionedResource;
import dev.nodemesh.control.translate.NodeViews;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * The server's side of one node's delta ADS stream: for each type, the versions the node holds (as
 * it told us on subscribe, then as it ACKed), the one response in flight, and what it last
 * rejected.
 *
 * <p>Backpressure: at most one response per type is in flight. Changes that arrive meanwhile are
 * not queued; the stream only remembers the latest view, and when the ACK (or NACK) comes, or the
 * transport becomes writable again, it sends the difference between that view and what the node
 * holds. So a slow node gets fewer, larger updates and never more than one buffered response per
 * type, and it never delays anyone else: nothing here blocks the executor.
 *
 * <p>A NACKed response changes nothing in what the node holds (it applies updates whole or not at
 * all); the same content is not sent again, and the next change is sent as the difference from what
 * the node really holds, so a fix of the bad resource carries the rest along.
 *
 * <p>Confined to the control-plane executor.
 */
final class NodeStream {
  private final ServerCallStreamObserver<DeltaDiscoveryResponse> call;
  private final Map<ResourceType, TypeState> types = ResourceType.newMap();
  private final String node;
  private final long joinedRevision;
  private long nonces;
  private @Nullable NodeViews viewsCached;
  private Map<ResourceType, Map<String, VersionedResource>> viewCached = Map.of();

  /**
   * What one type's exchange is at. {@code held} is what the node has: at first the versions it
   * claimed on subscribe, later the very view map it ACKed (shared with other streams, not copied).
   */
  private static final class TypeState {
    Map<String, ?> held = Map.of();

    /** The id of the NodeViews {@code held} came from; -1 for versions the node claimed. */
    long heldViewsId = -1;

    @Nullable Pending inflight;
    @Nullable Map<String, VersionedResource> rejected;
  }

  /** A response awaiting its ACK or NACK, and the view the node will hold once it ACKs. */
  record Pending(
      String nonce,
      Map<String, VersionedResource> after,
      long viewsId,
      long revision,
      long changedAtNanos) {}

  /** The version of {@code name} in a held map of either kind, or null. */
  private static @Nullable String version(Map<String, ?> held, String name) {
    Object v = held.get(name);
    if (v instanceof VersionedResource r) {
      return r.version();
    }
    return (String) v;
  }

  private static void diff(
      String name,
      @Nullable VersionedResource want,
      @Nullable String held,
      List<Resource> changed,
      List<String> removed) {
    if (want != null && !want.version().equals(held)) {
      changed.add(
          Resource.newBuilder()
              .setName(name)
              .setVersion(want.version())
              .setResource(want.any())
              .build());
    } else if (want == null && held != null) {
      removed.add(name);
    }
  }

  /** True when both views carry the same names at the same versions. */
  private static boolean sameVersions(
      Map<String, VersionedResource> a, @Nullable Map<String, VersionedResource> b) {
    if (b == null || a.size() != b.size()) {
      return false;
    }
    if (a == b) {
      return true;
    }
    for (Map.Entry<String, VersionedResource> e : a.entrySet()) {
      VersionedResource other = b.get(e.getKey());
      if (other == null || !other.version().equals(e.getValue().version())) {
        return false;
      }
    }
    return true;
  }

  NodeStream(
      ServerCallStreamObserver<DeltaDiscoveryResponse> call, String node, long joinedRevision) {
    this.call = call;
    this.node = node;
    this.joinedRevision = joinedRevision;
  }

  String node() {
    return node;
  }

  /** A subscription (a request without a nonce). Only wildcard subscriptions are served. */
  void subscribe(ResourceType type, Map<String, String> initialVersions) {
    if (types.containsKey(type)) {
      return; // a later subscribe on the same stream names resources; we serve the wildcard anyway
    }
    TypeState st = new TypeState();
    st.held = Map.copyOf(initialVersions);
    types.put(type, st);
  }

  /**
   * The node's answer to a response. Returns the pending response it answered, or null when the
   * nonce is not the one in flight (a stale answer, which the protocol says to ignore).
   */
  @Nullable Pending answer(ResourceType type, String nonce, boolean nack) {
    TypeState st = types.get(type);
    if (st == null || st.inflight == null || !st.inflight.nonce().equals(nonce)) {
      return null;
    }
    Pending p = st.inflight;
    st.inflight = null;
    if (nack) {
      st.rejected = p.after();
    } else {
      st.held = p.after();
      st.heldViewsId = p.viewsId();
      st.rejected = null;
    }
    return p;
  }

  /** True when the push was caused by a change after this node joined (worth a latency sample). */
  boolean measures(Pending p) {
    return p.revision() > joinedRevision;
  }

  /**
   * Sends each subscribed type's difference between {@code views} and what the node holds, unless a
   * response is in flight or the transport is not ready (then a later call catches up).
   *
   * @return the number of resources sent per type (for metrics)
   */
  Map<ResourceType, Integer> sync(@Nullable NodeViews views) {
    Map<ResourceType, Integer> sent = ResourceType.newMap();
    if (views == null || call.isCancelled()) {
      return sent;
    }
    if (views != viewsCached) {
      viewCached = views.forNode(node);
      viewsCached = views;
    }
    for (Map.Entry<ResourceType, TypeState> e : types.entrySet()) {
      TypeState st = e.getValue();
      if (st.inflight != null || !call.isReady()) {
        continue;
      }
      ResourceType type = e.getKey();
      Map<String, VersionedResource> desired = viewCached.getOrDefault(type, Map.of());
      List<Resource> changed = new ArrayList<>();
      List<String> removed = new ArrayList<>();
      if (st.heldViewsId >= 0 && st.heldViewsId == views.previousId()) {
        // The node holds the previous push's view: only the names that push changed can differ.
        for (String name : views.candidates(type, node, st.held)) {
          diff(name, desired.get(name), version(st.held, name), changed, removed);
        }
      } else {
        for (VersionedResource r : desired.values()) {
          diff(r.name(), r, version(st.held, r.name()), changed, removed);
        }
        for (String name : st.held.keySet()) {
          if (!desired.containsKey(name)) {
            removed.add(name);
          }
        }
      }
      // A node that claimed nothing for a type it has no resources of still gets one (empty)
      // response: its client applies the first config only once every subscribed type has
      // answered (initial fetch), so silence would keep it waiting.
      boolean firstOfNothing = st.heldViewsId < 0 && st.held.isEmpty() && st.rejected == null;
      if (changed.isEmpty() && removed.isEmpty() && !firstOfNothing) {
        // The node already holds exactly this view: remember it as such, so the next push can
        // take the fast path.
        st.held = desired;
        st.heldViewsId = views.id();
        continue;
      }
      if (sameVersions(desired, st.rejected)) {
        continue; // the node rejected exactly this; wait for a change
      }
      String nonce = Long.toString(++nonces);
      long revision = views.snapshot().revision();
      call.onNext(
          DeltaDiscoveryResponse.newBuilder()
              .setTypeUrl(type.typeUrl())
              .setSystemVersionInfo(Long.toString(revision))
              .setNonce(nonce)
              .addAllResources(changed)
              .addAllRemovedResources(removed)
              .build());
      st.inflight =
          new Pending(nonce, desired, views.id(), revision, views.snapshot().changedAtNanos());
      sent.put(type, changed.size() + removed.size());
    }
    return sent;
  }
}
