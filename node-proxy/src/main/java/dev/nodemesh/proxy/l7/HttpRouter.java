package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TextMatch;
import dev.nodemesh.proxy.outbound.LoadBalancer;
import dev.nodemesh.proxy.outbound.OutboundRouter;
import dev.nodemesh.proxy.outbound.Route;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.function.IntUnaryOperator;
import org.jspecify.annotations.Nullable;

/**
 * Decides where one HTTP request goes, from the snapshot and the request alone: the first route
 * entry of the dialled Service (in Gateway API precedence) whose match holds, then a backend by
 * weight, then an endpoint of that backend by the load balancer. No I/O, so every case is a table
 * row in a test.
 */
public final class HttpRouter {
  private HttpRouter() {}

  /** What to do with a request. */
  public sealed interface Decision {}

  /**
   * Forward to {@code target} (its service, port, endpoint and address) under {@code entry}'s rule.
   */
  public record Forward(HttpRouteEntry entry, Route.ToService target) implements Decision {}

  /** No rule matches: 404, as Gateway API asks. */
  public record NoMatch() implements Decision {}

  /**
   * The rule matched but has no usable backend (none listed, all weights 0, an unknown Service or
   * port, a Service in another namespace no ReferenceGrant permits): 500, as Gateway API asks for
   * unresolved references.
   */
  public record BadBackend(HttpRouteEntry entry, String reason) implements Decision {}

  /** The backend Service has no usable endpoint: 503. */
  public record NoEndpoints(HttpRouteEntry entry, MeshService backend) implements Decision {}

  /**
   * @param service the Service the client dialled (its VIP)
   * @param servicePort the port it dialled
   * @param vip the VIP it dialled; backends are reached on an IP of the same family
   * @param path the request target as sent (path and query)
   * @param random returns a number in {@code [0, bound)} for the weighted choice
   */
  public static Decision route(
      ConfigSnapshot snapshot,
      MeshService service,
      int servicePort,
      InetAddress vip,
      String method,
      String path,
      HttpHeaders headers,
      LoadBalancer loadBalancer,
      IntUnaryOperator random) {
    QueryStringDecoder uri = new QueryStringDecoder(path);
    String rawPath = uri.rawPath();
    Map<String, List<String>> query = null;
    boolean covered = false;
    for (HttpRouteEntry e : snapshot.httpRoutes(service.id())) {
      if (e.port() != 0 && e.port() != servicePort) {
        continue;
      }
      covered = true;
      HttpRoute.Match m = e.match();
      if (m.method() != null && !m.method().equals(method)) {
        continue;
      }
      if (!m.path().matches(rawPath)) {
        continue;
      }
      if (!headersMatch(m.headers(), headers)) {
        continue;
      }
      if (!m.queryParams().isEmpty()) {
        if (query == null) {
          query = uri.parameters();
        }
        if (!queryMatches(m.queryParams(), query)) {
          continue;
        }
      }
      return backend(snapshot, e, vip, loadBalancer, random);
    }
    if (!covered) {
      // No route on this port (L7 is here for the destination's L7 policy): the Service itself.
      return backend(snapshot, defaultEntry(service, servicePort), vip, loadBalancer, random);
    }
    return new NoMatch();
  }

  /** The implicit route of a Service port no route covers: every request to the Service itself. */
  public static HttpRouteEntry defaultEntry(MeshService service, int servicePort) {
    HttpRoute.Rule rule =
        new HttpRoute.Rule(
            List.of(HttpRoute.Match.everything()),
            List.of(new HttpRoute.Backend(service.id(), servicePort, 1)),
            HttpRoute.HeaderModifier.NONE,
            HttpRoute.HeaderModifier.NONE,
            null,
            null,
            null,
            null);
    HttpRoute route =
        new HttpRoute("(service)", service.namespace(), List.of(), List.of(rule), false, 0);
    return new HttpRouteEntry(route, servicePort, 0, rule, rule.matches().get(0));
  }

  private static boolean headersMatch(List<TextMatch> matches, HttpHeaders headers) {
    for (TextMatch h : matches) {
      if (!h.matches(headers.get(h.name()))) {
        return false;
      }
    }
    return true;
  }

  private static boolean queryMatches(List<TextMatch> matches, Map<String, List<String>> query) {
    for (TextMatch q : matches) {
      List<String> values = query.get(q.name());
      // Gateway API: with a repeated parameter, only the first value counts.
      if (values == null || values.isEmpty() || !q.matches(values.get(0))) {
        return false;
      }
    }
    return true;
  }

  private static Decision backend(
      ConfigSnapshot snapshot,
      HttpRouteEntry entry,
      InetAddress vip,
      LoadBalancer loadBalancer,
      IntUnaryOperator random) {
    List<HttpRoute.Backend> backends = entry.rule().backends();
    long total = 0;
    for (HttpRoute.Backend b : backends) {
      total += b.weight();
    }
    if (total == 0) {
      return new BadBackend(entry, "no backend with a weight above 0");
    }
    int r = random.applyAsInt((int) Math.min(total, Integer.MAX_VALUE));
    HttpRoute.Backend chosen = backends.get(backends.size() - 1);
    for (HttpRoute.Backend b : backends) {
      r -= b.weight();
      if (r < 0) {
        chosen = b;
        break;
      }
    }
    if (!chosen.permitted()) {
      return new BadBackend(
          entry,
          "Service "
              + chosen.service()
              + " is in another namespace and no ReferenceGrant there permits it");
    }
    MeshService svc = snapshot.serviceByName(chosen.service());
    if (svc == null) {
      return new BadBackend(entry, "Service " + chosen.service() + " does not exist");
    }
    ServicePort port = svc.port(chosen.port());
    if (port == null || svc.vips().isEmpty()) {
      return new BadBackend(entry, "Service " + chosen.service() + " has no port " + chosen.port());
    }
    Route r2 = OutboundRouter.toEndpoint(snapshot, svc, port, vip, loadBalancer);
    if (r2 instanceof Route.ToService to) {
      return new Forward(entry, to);
    }
    return new NoEndpoints(entry, svc);
  }

  /**
   * The request target after the rule's URLRewrite, or {@code target} unchanged when there is none.
   * ReplacePrefixMatch swaps the part the PathPrefix match matched, keeping segment boundaries.
   */
  public static String rewritePath(HttpRouteEntry entry, String target) {
    HttpRoute.Rewrite rw = entry.rule().rewrite();
    if (rw == null) {
      return target;
    }
    int q = target.indexOf('?');
    String path = q < 0 ? target : target.substring(0, q);
    String query = q < 0 ? "" : target.substring(q);
    String full = rw.fullPath();
    String prefix = rw.prefix();
    if (full != null) {
      return full + query;
    }
    if (prefix != null) {
      String matched = entry.match().path().value();
      if (matched.length() > 1 && matched.endsWith("/")) {
        matched = matched.substring(0, matched.length() - 1);
      }
      String rest =
          matched.equals("/") ? path : path.substring(Math.min(matched.length(), path.length()));
      String base =
          prefix.length() > 1 && prefix.endsWith("/")
              ? prefix.substring(0, prefix.length() - 1)
              : prefix;
      String joined;
      if (rest.isEmpty()) {
        joined = base;
      } else if (base.equals("/")) {
        joined = rest.startsWith("/") ? rest : "/" + rest;
      } else {
        joined = base + (rest.startsWith("/") ? rest : "/" + rest);
      }
      return joined + query;
    }
    return target;
  }

  /** The Host after the rule's URLRewrite hostname, or null to keep the client's. */
  public static @Nullable String rewriteHost(HttpRouteEntry entry) {
    HttpRoute.Rewrite rw = entry.rule().rewrite();
    return rw == null ? null : rw.hostname();
  }
}
