package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.metrics.HttpMeters;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.outbound.Route;
import org.jspecify.annotations.Nullable;

/**
 * The metric labels and request meters of one downstream connection's requests (every stream of an
 * h2c connection), kept from one request to the next while what they are made of stays the same:
 * the config snapshot (the principals come from it), the endpoint and backend Service, and the
 * meters' registration ({@link ProxyMetrics#generation}: a pod's removal drops its series, and the
 * next request registers them again). Building them per request meant three new strings (two SPIFFE
 * IDs and {@code name.namespace}) and hashing and comparing eight label values to find the meters.
 * Confined to the connection's event loop (an h2c connection's streams run on it too), so plain
 * fields.
 */
final class RequestMeters {
  /** Labels and the meters registered for them. */
  record Observed(TrafficLabels labels, HttpMeters meters) {}

  private @Nullable ConfigSnapshot snapshot;
  private int generation;
  private @Nullable Workload endpoint;
  private @Nullable MeshService backend;
  private @Nullable Observed routed;
  private @Nullable Observed unrouted;

  /**
   * The labels and meters of a request from {@code cx}'s caller to {@code t}'s endpoint, or of one
   * answered without an endpoint ({@code t} null), under the snapshot current now.
   */
  Observed of(RequestHandler.Context cx, Route.@Nullable ToService t) {
    DataPlane plane = cx.plane();
    ConfigSnapshot now = plane.snapshots().current();
    int gen = plane.metrics().generation();
    if (now != snapshot || gen != generation) {
      snapshot = now;
      generation = gen;
      routed = null;
      unrouted = null;
    }
    if (t == null) {
      Observed u = unrouted;
      if (u == null) {
        u = observe(plane, labels(cx, now, null));
        unrouted = u;
      }
      return u;
    }
    Observed r = routed;
    if (r == null || t.endpoint() != endpoint || t.service() != backend) {
      r = observe(plane, labels(cx, now, t));
      routed = r;
      endpoint = t.endpoint();
      backend = t.service();
    }
    return r;
  }

  private static Observed observe(DataPlane plane, TrafficLabels labels) {
    return new Observed(labels, plane.metrics().http(labels));
  }

  /** The labels themselves: the caller, the destination workload (or unknown) and Service. */
  static TrafficLabels labels(
      RequestHandler.Context cx, ConfigSnapshot snapshot, Route.@Nullable ToService t) {
    EnrolledPod s = cx.source();
    DataPlane plane = cx.plane();
    if (t == null) {
      return new TrafficLabels(
          "source",
          s.name(),
          s.namespace(),
          TrafficLabels.UNKNOWN,
          cx.service().namespace(),
          cx.service().name() + "." + cx.service().namespace(),
          plane.principalLabel(snapshot, s),
          TrafficLabels.UNKNOWN);
    }
    MeshService b = t.service();
    return new TrafficLabels(
        "source",
        s.name(),
        s.namespace(),
        t.endpoint().name(),
        b.namespace(),
        b.name() + "." + b.namespace(),
        plane.principalLabel(snapshot, s),
        plane.principalLabel(t.endpoint()));
  }
}
