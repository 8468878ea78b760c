package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.HttpRequestInfo;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import dev.nodemesh.proxy.outbound.Route;
import io.netty.handler.codec.http.HttpHeaders;
import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The authorization layer: the destination's L7 policy, checked here for an endpoint enrolled on
 * this node whose policies have L7 rules (the L4 check at connection time covers the others; a pod
 * on another node is checked by its own node). A denial counts {@code
 * nodemesh_policy_denials_total}; the decision and the caller's principal go to the access log.
 */
final class RequestAuthorization {
  private static final Logger log = LoggerFactory.getLogger(RequestAuthorization.class);

  private RequestAuthorization() {}

  /** True when the request may go to {@code target}; false: answer 403 with flag DENY. */
  static boolean allowed(
      RequestHandler.Context cx,
      ConfigSnapshot snapshot,
      Route.ToService target,
      String method,
      String path,
      HttpHeaders headers,
      @Nullable ConnectionLog line) {
    InetSocketAddress to = target.upstream();
    Workload dst = target.endpoint();
    if (cx.plane().pods().byIp(to.getAddress()) == null || !snapshot.needsL7Authorization(dst)) {
      return true;
    }
    ConnectionSource caller =
        new ConnectionSource(
            SpiffeId.ofEnrolledPod(snapshot, cx.source(), cx.plane().trustDomain()),
            sourceIpLike(cx, to.getAddress()),
            true);
    Decision d =
        cx.plane()
            .authorizer()
            .check(
                snapshot,
                dst,
                to.getPort(),
                caller,
                new HttpRequestInfo(method, path, headers::get));
    if (line != null) {
      line.authz(d.allowed() ? "allow" : "deny", d.policy());
      if (caller.principal() != null) {
        line.sourcePrincipal(caller.principal().toString());
      }
    }
    if (d.allowed()) {
      return true;
    }
    cx.plane()
        .metrics()
        .policyDenials(
            "source",
            TrafficLabels.principal(caller.principal()),
            dst.name(),
            dst.namespace(),
            d.reason())
        .increment();
    log.debug("denied {} {} to {} by {} ({})", method, path, dst.id(), d.policy(), d.reason());
    return false;
  }

  private static InetAddress sourceIpLike(RequestHandler.Context cx, InetAddress destination) {
    for (InetAddress ip : cx.source().ips()) {
      if ((ip instanceof Inet4Address) == (destination instanceof Inet4Address)) {
        return ip;
      }
    }
    return destination;
  }
}
