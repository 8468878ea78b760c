package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.HttpRouteEntry;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TextMatch;
import io.netty.handler.codec.http.HttpHeaders;
import io.netty.handler.codec.http.QueryStringDecoder;
import java.util.List;
import java.util.Map;
import java.util.function.IntUnaryOperator;
import org.jspecify.annotations.Nullable;

/**
 * Decides where one HTTP request goes, from the snapshot, the caller's namespace and the request
 * alone: the first route entry (in Gateway API precedence) whose match holds among the routes of
 * the dialled Service that apply to this caller, then a backend by weight. Which routes apply is
 * GEP-1426's producer/consumer rule ({@link ConfigSnapshot#httpRoutes(
 * dev.nodemesh.model.config.NamespacedName, int, String)}): the caller namespace's own consumer
 * routes when it has any on the port, else the Service owner's producer routes, so a route in one
 * tenant's namespace never shapes another tenant's calls. It stops at the backend Service: the
 * endpoint is picked once, by that Service's TrafficPolicy ({@link EndpointPicker}). No I/O, so
 * every case is a table row in a test.
 */
public final class HttpRouter {
  private HttpRouter() {}

  /** What to do with a request. */
  public sealed interface Decision {}

  /** Forward to the backend Service {@code service}'s {@code port} under {@code entry}'s rule. */
  public record ToBackend(HttpRouteEntry entry, MeshService service, ServicePort port)
      implements Decision {}

  /** No rule matches: 404, as Gateway API asks. */
  public record NoMatch() implements Decision {}

  /**
   * The rule matched but has no usable backend (none listed, all weights 0, an unknown Service or
   * port, a Service in another namespace no ReferenceGrant permits): 500, as Gateway API asks for
   * unresolved references.
   */
  public record BadBackend(HttpRouteEntry entry, String reason) implements Decision {}

  /**
   * @param callerNamespace the namespace of the workload that sent the request, known from the
   *     listener it arrived on (never from the request)
   * @param service the Service the client dialled (its VIP)
   * @param servicePort the port it dialled
   * @param path the request target as sent (path and query)
   * @param random returns a number in {@code [0, bound)} for the weighted choice
   */
  public static Decision route(
      ConfigSnapshot snapshot,
      String callerNamespace,
      MeshService service,
      int servicePort,
      String method,
      String path,
      HttpHeaders headers,
      IntUnaryOperator random) {
    QueryStringDecoder uri = new QueryStringDecoder(path);
    String rawPath = uri.rawPath();
    Map<String, List<String>> query = null;
    List<HttpRouteEntry> entries = snapshot.httpRoutes(service.id(), servicePort, callerNamespace);
    for (HttpRouteEntry e : entries) {
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
      return backend(snapshot, e, random);
    }
    if (entries.isEmpty()) {
      // No route for this caller on this port (L7 is here for the destination's L7 policy): the
      // Service itself.
      return backend(snapshot, defaultEntry(service, servicePort), random);
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
      ConfigSnapshot snapshot, HttpRouteEntry entry, IntUnaryOperator random) {
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
    return new ToBackend(entry, svc, port);
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
