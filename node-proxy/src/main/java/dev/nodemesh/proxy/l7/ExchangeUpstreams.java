package dev.nodemesh.proxy.l7;

import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.upstream.UpstreamPath;
import dev.nodemesh.proxy.upstream.UpstreamPools;
import io.netty.channel.Channel;
import io.netty.util.concurrent.Future;

/**
 * The one seam between an L7 exchange and the way to its upstream: how a try gets an exchange
 * channel to its endpoint, binds itself to the response, and gives the channel back. {@link
 * #POOLED} is the data plane's way: its {@link dev.nodemesh.proxy.upstream.PathDecider} says once
 * whether the endpoint is reached directly (and from which netns) or through the source workload's
 * HBONE tunnel, and its per-loop {@link UpstreamPools} dial and pool accordingly, as for L4 and
 * mirroring. Nothing else in the exchange knows about netns, tunnels or pools; tests plug in a
 * fake.
 */
interface ExchangeUpstreams {
  /**
   * An exchange channel to {@code target}'s endpoint; completes on {@code downstream}'s event loop
   * (the caller's).
   *
   * @param h2 the endpoint's port speaks HTTP/2 (a stream on a pooled connection)
   */
  Future<Channel> acquire(
      RequestHandler.Context cx, Channel downstream, Route.ToService target, boolean h2);

  /** Makes {@code sink} receive what {@code exchange} reads. */
  void bind(Channel exchange, UpstreamPools.ResponseSink sink);

  /** Gives {@code exchange} back: pooled again when {@code reusable}, else closed. */
  void release(Channel exchange, boolean reusable);

  /** The data plane's upstreams: pooled, direct or through the HBONE tunnel. */
  ExchangeUpstreams POOLED =
      new ExchangeUpstreams() {
        @Override
        public Future<Channel> acquire(
            RequestHandler.Context cx, Channel downstream, Route.ToService target, boolean h2) {
          // Tunnel or direct, and from which namespace: the data plane's one path decision.
          DataPlane plane = cx.plane();
          UpstreamPath path =
              plane
                  .upstreams()
                  .pathTo(
                      plane.snapshots().current(),
                      cx.source(),
                      target.endpoint(),
                      target.upstream());
          return plane
              .upstreams()
              .http()
              .acquire(downstream, path, h2, cx.limits().upstreamIdleTimeout());
        }

        @Override
        public void bind(Channel exchange, UpstreamPools.ResponseSink sink) {
          UpstreamPools.bind(exchange, sink);
        }

        @Override
        public void release(Channel exchange, boolean reusable) {
          UpstreamPools.release(exchange, reusable);
        }
      };
}
