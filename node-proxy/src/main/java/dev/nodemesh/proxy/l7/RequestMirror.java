package dev.nodemesh.proxy.l7;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.authz.ConnectionSource;
import dev.nodemesh.proxy.authz.HttpRequestInfo;
import dev.nodemesh.proxy.outbound.OutboundRouter;
import dev.nodemesh.proxy.outbound.Route;
import io.netty.channel.Channel;
import io.netty.handler.codec.http.DefaultHttpRequest;
import io.netty.handler.codec.http.HttpContent;
import io.netty.handler.codec.http.HttpHeaderNames;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.HttpObject;
import io.netty.handler.codec.http.HttpRequest;
import io.netty.handler.codec.http.LastHttpContent;
import io.netty.util.ReferenceCountUtil;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Gateway API's RequestMirror for one request: fire and forget. The request's head (Host with
 * {@code -shadow} appended, as Envoy does, so the mirror can tell copies apart) and a retained copy
 * of its body are sent to an endpoint of the mirror Service once the request is complete; the
 * response is read and dropped. Nothing here touches the main exchange: a mirror that cannot
 * connect, or a body larger than {@link HttpLimits#maxReplayBytes} (not copied further), is simply
 * dropped. An endpoint on this node whose policy denies the request gets no copy.
 */
final class RequestMirror implements UpstreamPools.ResponseSink {
  private static final Logger log = LoggerFactory.getLogger(RequestMirror.class);

  private final RequestHandler.Context cx;
  private final Channel downstream;
  private final Route.ToService target;
  private final HttpRequest head;
  private final List<HttpContent> body = new ArrayList<>();
  private int bytes;
  private boolean done;

  private RequestMirror(
      RequestHandler.Context cx, Channel downstream, Route.ToService target, HttpRequest head) {
    this.cx = cx;
    this.downstream = downstream;
    this.target = target;
    this.head = head;
  }

  /**
   * A mirror for this request, or null when it is not drawn ({@code percent}) or has nowhere to go.
   *
   * @param upstreamHead the head as sent to the main backend (rewritten, mesh headers added)
   */
  static @Nullable RequestMirror start(
      RequestHandler.Context cx,
      Channel downstream,
      ConfigSnapshot snapshot,
      HttpRoute.Mirror m,
      @Nullable HttpRequest upstreamHead) {
    if (upstreamHead == null
        || m.percent() <= 0
        || (m.percent() < 100 && ThreadLocalRandom.current().nextInt(100) >= m.percent())) {
      return null;
    }
    MeshService svc = snapshot.serviceByName(m.service());
    ServicePort port = svc == null ? null : svc.port(m.port());
    if (svc == null || port == null) {
      return null;
    }
    Route r =
        OutboundRouter.toEndpoint(
            snapshot, svc, port, cx.dialled().getAddress(), cx.plane().loadBalancer());
    if (!(r instanceof Route.ToService to)) {
      return null;
    }
    HttpHeaders h = upstreamHead.headers().copy();
    String host = h.get(HttpHeaderNames.HOST);
    if (host != null) {
      h.set(HttpHeaderNames.HOST, shadowHost(host));
    }
    HttpRequest copy =
        new DefaultHttpRequest(
            upstreamHead.protocolVersion(), upstreamHead.method(), upstreamHead.uri(), h);
    EnrolledPod local = cx.plane().pods().byIp(to.upstream().getAddress());
    if (local != null) {
      String path = upstreamHead.uri();
      int q = path.indexOf('?');
      var decision =
          cx.plane()
              .authorizer()
              .check(
                  snapshot,
                  to.endpoint(),
                  to.upstream().getPort(),
                  new ConnectionSource(
                      SpiffeId.ofEnrolledPod(snapshot, cx.source(), cx.plane().trustDomain()),
                      to.upstream().getAddress(),
                      true),
                  new HttpRequestInfo(
                      copy.method().name(), q < 0 ? path : path.substring(0, q), h::get));
      if (!decision.allowed()) {
        return null;
      }
    }
    return new RequestMirror(cx, downstream, to, copy);
  }

  /** {@code host-shadow}, the port (if any) kept after it: "web:80" becomes "web-shadow:80". */
  static String shadowHost(String host) {
    int colon = host.lastIndexOf(':');
    boolean hasPort =
        colon > 0
            && (host.startsWith("[") ? host.charAt(colon - 1) == ']' : host.indexOf(':') == colon);
    return hasPort
        ? host.substring(0, colon) + "-shadow" + host.substring(colon)
        : host + "-shadow";
  }

  /** A body part of the request (not consumed: a retained duplicate is kept). */
  void content(HttpContent c, int limit) {
    if (done) {
      return;
    }
    bytes += c.content().readableBytes();
    if (bytes > limit) {
      abandonIfIncomplete();
      return;
    }
    body.add(c.retainedDuplicate());
    if (c instanceof LastHttpContent) {
      send();
    }
  }

  /** The main request ended before its body was complete: the copy is dropped. */
  void abandonIfIncomplete() {
    if (done) {
      return;
    }
    done = true;
    body.forEach(ReferenceCountUtil::release);
    body.clear();
  }

  private void send() {
    done = true;
    List<HttpContent> parts = new ArrayList<>(body);
    body.clear();
    InetSocketAddress to = target.upstream();
    EnrolledPod local = cx.plane().pods().byIp(to.getAddress());
    NetworkNamespace from = local != null ? local.netns() : cx.source().netns();
    boolean h2 = HttpProxy.isH2(target.port().appProtocol());
    // A copy to an endpoint on another node goes through the source's HBONE tunnel, as requests do.
    dev.nodemesh.proxy.tunnel.Tunnel tunnel = cx.plane().tunnel();
    UpstreamPools.Via via =
        tunnel != null && tunnel.crossesNodes(target.endpoint(), local != null)
            ? new UpstreamPools.Via(cx.source(), target.endpoint())
            : null;
    UpstreamPools.acquire(
            cx.plane(), downstream, from, to, h2, via, cx.limits().upstreamIdleTimeout())
        .addListener(
            fut -> {
              if (!fut.isSuccess()) {
                log.debug("mirror to {} failed: {}", to, String.valueOf(fut.cause()));
                parts.forEach(ReferenceCountUtil::release);
                return;
              }
              Channel ex = (Channel) fut.getNow();
              UpstreamPools.bind(ex, this);
              ex.write(head);
              parts.forEach(ex::write);
              ex.flush();
            });
  }

  @Override
  public void response(Channel exchange, HttpObject msg) {
    boolean last = msg instanceof LastHttpContent;
    ReferenceCountUtil.release(msg);
    if (last) {
      UpstreamPools.release(exchange, true);
    }
  }

  @Override
  public void closed(Channel exchange) {}

  @Override
  public void writable(Channel exchange, boolean writable) {}
}
