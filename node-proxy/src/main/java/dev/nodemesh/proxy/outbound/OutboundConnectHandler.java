package dev.nodemesh.proxy.outbound;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.Admission;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.FailClosedAuthorizer;
import dev.nodemesh.proxy.authz.PolicyEnforcement;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.l7.HttpProxy;
import dev.nodemesh.proxy.liveness.FatalErrors;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.upstream.UpstreamPath;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * First handler of a connection captured on a pod's outbound listener: reads the original
 * destination, asks {@link OutboundRouter} where it goes, connects there and hands the pair to the
 * L4 relay, removing itself. The source pod is known from the listener, never from an IP.
 *
 * <p>How the target is reached is the data plane's path decision ({@code upstream.PathDecider}): a
 * pod enrolled on this node from inside its namespace (one proxy hop; its policy is checked here),
 * a mesh workload on another node through an HBONE tunnel when one is configured, anything else
 * from the source pod's namespace, as the pod itself would have.
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
      ConnectionLog unrouted =
          plane
              .accessLog()
              .begin(
                  new TrafficLabels(
                      "source",
                      source.name(),
                      source.namespace(),
                      TrafficLabels.UNKNOWN,
                      TrafficLabels.UNKNOWN,
                      TrafficLabels.UNKNOWN,
                      plane.principalLabel(plane.snapshots().current(), source),
                      TrafficLabels.UNKNOWN));
      if (unrouted != null) {
        unrouted.flag(ResponseFlag.NR).finish();
      }
      return;
    }
    ConfigSnapshot snapshot = plane.snapshots().current();
    Route route =
        OutboundRouter.route(snapshot, plane.serviceRange(), original, plane.loadBalancer());
    if (route instanceof Route.ToService s && HttpProxy.wants(snapshot, source, s)) {
      SpiffeId principal = SpiffeId.ofEnrolledPod(snapshot, source, plane.trustDomain());
      InetSocketAddress peer = (InetSocketAddress) ctx.channel().remoteAddress();
      if (localRefusal(plane, source, principal, peer, s, snapshot, true) == null) {
        // An HTTPRoute covers this Service port: L7 if the bytes are HTTP, else L4 as below. The
        // connection stands on this decision until policy changes: then it is asked again.
        plane
            .admissions()
            .admit(
                ctx.channel(),
                new Admission(
                    "source",
                    new ConnectionSource(
                        principal, sourceIpLike(source, peer, s.upstream().getAddress()), true),
                    snapshot,
                    null,
                    next -> localRefusal(plane, source, principal, peer, s, next, false)));
        HttpProxy.start(
            plane,
            ctx.channel(),
            source,
            s,
            original,
            () -> {
              // Not HTTP after all: the L4 path decides (and admits) it anew.
              plane.admissions().forget(ctx.channel());
              relay(ctx, snapshot, route, original);
            });
        return;
      }
    }
    relay(ctx, snapshot, route, original);
  }

  /**
   * Why the L7 path may not carry this connection, or null when it may without losing what the L4
   * path guarantees. L7 picks an endpoint per request; one on another node is reached through a
   * CONNECT stream in the source workload's HBONE tunnel, checked by the receiving node as any
   * stream. Endpoints on this node get no check of their own per request (unless their policy has
   * L7 rules), so L7 is taken only when every such endpoint any route of this Service that applies
   * to this caller may send to admits this source now; otherwise the connection takes the L4 path,
   * which checks policy per connection. The same question is asked again of each new snapshot while
   * the connection is open ({@code Admissions}): a refusal then resets it.
   *
   * @param unresolvedRefuses whether an endpoint the Service port does not resolve on counts: at
   *     accept it keeps the connection on L4 ({@link #UNRESOLVED}); on a re-check it is no policy
   *     matter and is skipped
   */
  private static Admission.@Nullable Refusal localRefusal(
      DataPlane plane,
      EnrolledPod source,
      @Nullable SpiffeId principal,
      @Nullable InetSocketAddress peer,
      Route.ToService s,
      ConfigSnapshot snapshot,
      boolean unresolvedRefuses) {
    // Only the routes that apply to this caller (GEP-1426 producer/consumer groups) can send it
    // anywhere, so only their backends are checked.
    java.util.List<HttpRouteEntry> routed =
        snapshot.httpRoutes(s.service().id(), s.port().port(), source.namespace());
    java.util.List<HttpRouteEntry> entries =
        !routed.isEmpty()
            ? routed
            : java.util.List.of(
                dev.nodemesh.proxy.l7.HttpRouter.defaultEntry(s.service(), s.port().port()));
    for (HttpRouteEntry entry : entries) {
      java.util.List<HttpRoute.Backend> backends =
          new java.util.ArrayList<>(entry.rule().backends());
      HttpRoute.Mirror mirror = entry.rule().mirror();
      if (mirror != null) {
        backends.add(new HttpRoute.Backend(mirror.service(), mirror.port(), 1));
      }
      for (HttpRoute.Backend backend : backends) {
        MeshService svc = snapshot.serviceByName(backend.service());
        ServicePort port = svc == null ? null : svc.port(backend.port());
        if (svc == null || port == null) {
          continue; // routes nowhere: answered locally (500), no upstream
        }
        for (Workload endpoint : snapshot.endpoints(svc)) {
          InetAddress ip = endpoint.ipLike(s.upstream().getAddress());
          if (ip == null) {
            continue;
          }
          EnrolledPod local = plane.pods().byIp(ip);
          // Endpoints on other nodes are reached through the tunnel (the receiving node checks
          // policy per stream), as on the L4 path; pods here are checked now.
          if (local == null) {
            continue;
          }
          int target = port.targetPortOn(endpoint);
          if (target == 0) {
            if (unresolvedRefuses) {
              return new Admission.Refusal(endpoint, 0, UNRESOLVED);
            }
            continue;
          }
          // An endpoint with L7 rules is checked per request on the L7 path instead.
          if (snapshot.needsL7Authorization(endpoint)) {
            continue;
          }
          ConnectionSource caller =
              new ConnectionSource(principal, sourceIpLike(source, peer, ip), true);
          Decision d = plane.authorizer().check(snapshot, endpoint, target, caller);
          if (!d.allowed()) {
            return new Admission.Refusal(endpoint, target, d);
          }
        }
      }
    }
    return null;
  }

  /**
   * What {@link #localRefusal} answers at accept for an endpoint the Service port does not resolve
   * on: not a policy decision, only "not on L7" (never counted or logged as a denial).
   */
  private static final Decision UNRESOLVED = new Decision(false, "-", "unresolved_port");

  private void relay(
      ChannelHandlerContext ctx, ConfigSnapshot snapshot, Route route, InetSocketAddress original) {
    TrafficLabels labels = labels(snapshot, route);
    ConnectionMeters meters = plane.metrics().connection(labels);
    ConnectionLog accessLog = plane.accessLog().begin(labels);
    if (accessLog != null) {
      accessLog.originalDestination(original);
    }
    if (route instanceof Route.NoConfig) {
      refuseWithoutConfig(ctx, snapshot, original, accessLog);
      return;
    }
    InetSocketAddress upstream = upstreamOf(route);
    if (upstream == null) {
      meters.failed().increment();
      log.debug("outbound {} from {}: {}", original, source, route);
      Relays.refuse(ctx.channel(), accessLog);
      return;
    }
    // How to reach it (same node, HBONE, or direct from the source's namespace): decided once.
    UpstreamPath path = plane.upstreams().pathTo(snapshot, source, endpointOf(route), upstream);
    if (path instanceof UpstreamPath.SameNode local
        && !authorizeLocal(ctx, snapshot, route, local.destination(), upstream, accessLog)) {
      return;
    }
    Relays.connectAndRelay(
        plane.upstreams(),
        ctx.channel(),
        path,
        meters,
        accessLog,
        Relays.idleTimeout(
            snapshot,
            route instanceof Route.ToService s ? s.service().id() : null,
            plane.timeouts().tcpIdle()),
        plane.metrics().registry());
  }

  /**
   * A VIP before any config: reset, counted as a denial for {@code no_config} (as the fail-closed
   * authorizer counts connections to pods here), the destination unknown.
   */
  private void refuseWithoutConfig(
      ChannelHandlerContext ctx,
      ConfigSnapshot snapshot,
      InetSocketAddress original,
      @Nullable ConnectionLog accessLog) {
    plane
        .metrics()
        .policyDenials(
            "source",
            plane.principalLabel(snapshot, source),
            TrafficLabels.UNKNOWN,
            TrafficLabels.UNKNOWN,
            FailClosedAuthorizer.REASON)
        .increment();
    log.debug("refused {} -> {}: in the service range, no config yet", source, original);
    Relays.reset(ctx.channel());
    if (accessLog != null) {
      accessLog.authz("deny", FailClosedAuthorizer.POLICY);
      accessLog.flag(ResponseFlag.DENY).finish();
    }
  }

  /**
   * Same-node traffic never reaches the destination's inbound capture (it is delivered from inside
   * the destination pod), so the destination's policy is checked here, with the identity the
   * source's listener proves. Cross-node traffic is checked by the receiving node.
   */
  private boolean authorizeLocal(
      ChannelHandlerContext ctx,
      ConfigSnapshot snapshot,
      Route route,
      EnrolledPod local,
      InetSocketAddress upstream,
      @Nullable ConnectionLog accessLog) {
    Workload destination = null;
    if (route instanceof Route.ToService s) {
      destination = s.endpoint();
    } else if (route instanceof Route.ToWorkload w) {
      destination = w.workload();
    }
    if (destination == null) {
      destination = PolicyEnforcement.enrolledOnly(local);
    }
    ConnectionSource caller =
        new ConnectionSource(
            SpiffeId.ofEnrolledPod(snapshot, source, plane.trustDomain()),
            sourceIpLike(
                source, (InetSocketAddress) ctx.channel().remoteAddress(), upstream.getAddress()),
            true);
    return PolicyEnforcement.enforce(
            plane.authorizer(),
            plane.metrics(),
            plane.admissions(),
            ctx.channel(),
            snapshot,
            destination,
            upstream.getPort(),
            caller,
            "source",
            accessLog)
        .allowed();
  }

  /**
   * The source pod's own IP of {@code destination}'s family: the peer address on the in-pod
   * listener is loopback in eBPF mode, so it says nothing for IP blocks.
   */
  private static InetAddress sourceIpLike(
      EnrolledPod source, @Nullable InetSocketAddress peer, InetAddress destination) {
    for (InetAddress ip : source.ips()) {
      if ((ip instanceof Inet4Address) == (destination instanceof Inet4Address)) {
        return ip;
      }
    }
    return peer != null ? peer.getAddress() : destination;
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

  /** The mesh workload a route leads to, or null for passthrough and refusals. */
  private static @Nullable Workload endpointOf(Route route) {
    if (route instanceof Route.ToService s) {
      return s.endpoint();
    }
    if (route instanceof Route.ToWorkload w) {
      return w.workload();
    }
    return null;
  }

  private TrafficLabels labels(ConfigSnapshot snapshot, Route route) {
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
        "source",
        source.name(),
        source.namespace(),
        dstWorkload,
        dstNamespace,
        dstService,
        plane.principalLabel(snapshot, source),
        plane.principalLabel(endpointOf(route)));
  }

  private static String serviceLabel(MeshService service) {
    return service.name() + "." + service.namespace();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    FatalErrors.check(cause);
    log.debug("outbound connection from {} failed", source, cause);
    ctx.close();
  }
}
