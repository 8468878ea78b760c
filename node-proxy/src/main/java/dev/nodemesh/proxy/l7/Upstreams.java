package dev.nodemesh.proxy.l7;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.outbound.Route;
import dev.nodemesh.proxy.tunnel.Tunnel;
import io.netty.channel.Channel;
import io.netty.util.concurrent.Future;

/**
 * The one seam between an L7 exchange and the way to its upstream: how a try gets an exchange
 * channel to its endpoint, binds itself to the response, and gives the channel back. {@link
 * #POOLED} is today's way (per-loop {@link UpstreamPools}; a socket from the endpoint's netns when
 * it is enrolled here, else from the source's; through the source workload's HBONE tunnel when the
 * endpoint is on another node). Nothing else in the exchange knows about netns, tunnels or pools,
 * so changing how upstreams are reached (a dialer that decides "tunnel or direct" once per route)
 * changes {@link #POOLED} alone; tests plug in a fake.
 */
interface Upstreams {
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

  /** Today's upstreams: {@link UpstreamPools}, direct or through the HBONE tunnel. */
  Upstreams POOLED =
      new Upstreams() {
        @Override
        public Future<Channel> acquire(
            RequestHandler.Context cx, Channel downstream, Route.ToService target, boolean h2) {
          var to = target.upstream();
          EnrolledPod local = cx.plane().pods().byIp(to.getAddress());
          NetworkNamespace from = local != null ? local.netns() : cx.source().netns();
          // Cross-node endpoints through the source workload's HBONE tunnel, as on the L4 path.
          Tunnel tunnel = cx.plane().tunnel();
          UpstreamPools.Via via =
              tunnel != null && tunnel.crossesNodes(target.endpoint(), local != null)
                  ? new UpstreamPools.Via(cx.source(), target.endpoint())
                  : null;
          return UpstreamPools.acquire(
              cx.plane(), downstream, from, to, h2, via, cx.limits().upstreamIdleTimeout());
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
