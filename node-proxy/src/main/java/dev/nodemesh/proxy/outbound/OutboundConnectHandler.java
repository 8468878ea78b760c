package dev.nodemesh.proxy.outbound;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.config.ConfigSnapshot;
import dev.nodemesh.proxy.config.MeshService;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.l7.HttpProxy;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * First handler of a connection captured on a pod's outbound listener: reads the original
 * destination, asks {@link OutboundRouter} where it goes, connects there and hands the pair to the
 * L4 relay, removing itself. The source pod is known from the listener, never from an IP.
 *
 * <p>A destination that is a pod enrolled on this node is reached from inside that pod's namespace
 * (one proxy hop for same-node traffic); anything else is reached from the source pod's namespace,
 * as the pod itself would have.
 */
public final class OutboundConnectHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(OutboundConnectHandler.class);

  private final DataPlane plane;
  private final EnrolledPod source;

  public OutboundConnectHandler(DataPlane plane, EnrolledPod source) {
    this.plane = plane;
    this.source = source;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    ctx.pipeline().remove(this);
    InetSocketAddress original =
        Relays.originalDestination(
            ctx.channel(),
            source,
            () -> plane.interception().originalDestination(ctx.channel(), source));
    if (original == null) {
      return;
    }
    ConfigSnapshot snapshot = plane.snapshots().current();
    Route route = OutboundRouter.route(snapshot, original, plane.loadBalancer());
    if (route instanceof Route.ToService s && HttpProxy.wants(snapshot, s)) {
      // An HTTPRoute covers this Service port: L7 if the bytes are HTTP, else L4 as below.
      HttpProxy.start(plane, ctx.channel(), source, s, original, () -> relay(ctx, route, original));
      return;
    }
    relay(ctx, route, original);
  }

  private void relay(ChannelHandlerContext ctx, Route route, InetSocketAddress original) {
    TrafficLabels labels = labels(route);
    ConnectionMeters meters = plane.metrics().connection(labels);
    InetSocketAddress upstream = upstreamOf(route);
    if (upstream == null) {
      meters.failed().increment();
      log.debug("outbound {} from {}: {}", original, source, route);
      Relays.reset(ctx.channel());
      return;
    }
    EnrolledPod local = plane.pods().byIp(upstream.getAddress());
    NetworkNamespace from = local != null ? local.netns() : source.netns();
    Relays.connectAndRelay(plane, ctx.channel(), from, upstream, meters);
  }

  private static @Nullable InetSocketAddress upstreamOf(Route route) {
    if (route instanceof Route.ToService s) {
      return s.upstream();
    }
    if (route instanceof Route.ToWorkload w) {
      return w.upstream();
    }
    if (route instanceof Route.Passthrough p) {
      return p.upstream();
    }
    return null; // NoEndpoints, UnknownServicePort: refuse
  }

  private TrafficLabels labels(Route route) {
    String dstWorkload = TrafficLabels.UNKNOWN;
    String dstNamespace = TrafficLabels.UNKNOWN;
    String dstService = TrafficLabels.UNKNOWN;
    if (route instanceof Route.ToService s) {
      dstWorkload = s.endpoint().name();
      dstNamespace = s.endpoint().namespace();
      dstService = serviceLabel(s.service());
    } else if (route instanceof Route.ToWorkload w) {
      dstWorkload = w.workload().name();
      dstNamespace = w.workload().namespace();
    } else if (route instanceof Route.NoEndpoints n) {
      dstNamespace = n.service().namespace();
      dstService = serviceLabel(n.service());
    } else if (route instanceof Route.UnknownServicePort u) {
      dstNamespace = u.service().namespace();
      dstService = serviceLabel(u.service());
    }
    return new TrafficLabels(
        "source", source.name(), source.namespace(), dstWorkload, dstNamespace, dstService);
  }

  private static String serviceLabel(MeshService service) {
    return service.name() + "." + service.namespace();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    log.debug("outbound connection from {} failed", source, cause);
    ctx.close();
  }
}
