package dev.nodemesh.proxy.inbound;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.PolicyEnforcement;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.upstream.UpstreamPath;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.net.InetSocketAddress;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * First handler of a connection captured on a pod's inbound listener (plaintext arriving from
 * outside the pod): reads the original destination and delivers to the app from a socket inside the
 * same pod, so the app sees local delivery. Connections aimed at the proxy's own ports are refused,
 * since delivering them would loop back into the proxy; the rest are checked against the pod's
 * policy as plaintext without identity (PeerAuthentication STRICT refuses them).
 */
public final class InboundConnectHandler extends ChannelInboundHandlerAdapter {
  private static final Logger log = LoggerFactory.getLogger(InboundConnectHandler.class);
  private static final Set<Integer> PROXY_PORTS =
      Set.of(
          NodeProxyConfig.OUTBOUND_PORT,
          NodeProxyConfig.INBOUND_PORT,
          NodeProxyConfig.HBONE_PORT,
          NodeProxyConfig.ADMIN_PORT);

  private final DataPlane plane;
  private final EnrolledPod pod;

  public InboundConnectHandler(DataPlane plane, EnrolledPod pod) {
    this.plane = plane;
    this.pod = pod;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    ctx.pipeline().remove(this);
    InetSocketAddress original =
        Relays.originalDestination(
            ctx.channel(), pod, () -> plane.interception().inboundDestination(ctx.channel(), pod));
    if (original == null) {
      ConnectionLog unrouted =
          plane
              .accessLog()
              .begin(
                  new TrafficLabels(
                      "destination",
                      TrafficLabels.UNKNOWN,
                      TrafficLabels.UNKNOWN,
                      pod.name(),
                      pod.namespace(),
                      TrafficLabels.UNKNOWN,
                      TrafficLabels.UNKNOWN,
                      plane.principalLabel(plane.snapshots().current(), pod)));
      if (unrouted != null) {
        unrouted.flag(ResponseFlag.NR).finish();
      }
      return;
    }
    ConfigSnapshot snapshot = plane.snapshots().current();
    InetSocketAddress peer = (InetSocketAddress) ctx.channel().remoteAddress();
    Workload source = peer == null ? null : snapshot.workloadByIp(peer.getAddress());
    // The config's view of the destination names it in metrics; a pod enrolled but not (yet) in
    // the config is named as the agent enrolled it.
    InboundRoute route = InboundRouter.route(snapshot, original);
    Workload destination =
        route instanceof InboundRoute.ToLocalWorkload local ? local.workload() : null;
    TrafficLabels labels =
        new TrafficLabels(
            "destination",
            source == null ? TrafficLabels.UNKNOWN : source.name(),
            source == null ? TrafficLabels.UNKNOWN : source.namespace(),
            destination == null ? pod.name() : destination.name(),
            destination == null ? pod.namespace() : destination.namespace(),
            TrafficLabels.UNKNOWN,
            // Plaintext capture: the caller proved nothing, whatever its address says.
            TrafficLabels.UNKNOWN,
            destination == null
                ? plane.principalLabel(snapshot, pod)
                : plane.principalLabel(destination));
    ConnectionMeters meters = plane.metrics().connection(labels);
    ConnectionLog accessLog = plane.accessLog().begin(labels);
    if (accessLog != null) {
      accessLog.originalDestination(original);
    }
    if (PROXY_PORTS.contains(original.getPort()) || !pod.ips().contains(original.getAddress())) {
      meters.failed().increment();
      log.debug("inbound to {} refused: destination {} is not the pod's app", pod, original);
      Relays.refuse(ctx.channel(), accessLog);
      return;
    }
    // Plaintext from outside the mesh (same-node pod traffic never arrives here: it is delivered
    // from inside this pod's netns): no identity, the peer's address only for IP blocks. A
    // connection without a peer address cannot be checked, so it is refused (fail closed).
    if (peer == null) {
      Relays.refuse(ctx.channel(), accessLog);
      return;
    }
    Decision decision =
        PolicyEnforcement.enforce(
            plane.authorizer(),
            plane.metrics(),
            plane.admissions(),
            ctx.channel(),
            snapshot,
            destination != null ? destination : PolicyEnforcement.enrolledOnly(pod),
            original.getPort(),
            new ConnectionSource(null, peer.getAddress(), false),
            "destination",
            accessLog);
    if (!decision.allowed()) {
      return;
    }
    Relays.connectAndRelay(
        plane.upstreams(),
        ctx.channel(),
        // From the plaintext client's own address: the app sees who called.
        new UpstreamPath.SameNode(pod, original, peer.getAddress()),
        meters,
        accessLog,
        plane.timeouts().tcpIdle(),
        plane.metrics().registry());
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    log.debug("inbound connection to {} failed", pod, cause);
    ctx.close();
  }
}
