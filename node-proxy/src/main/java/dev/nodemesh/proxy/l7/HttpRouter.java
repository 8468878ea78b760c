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
 * the dialled Service that apply to this caller, then a backend by weight (or, when the rule has a
 * RequestRedirect filter, the redirect the proxy answers with). Which routes apply is GEP-1426's
 * producer/consumer rule ({@link ConfigSnapshot#httpRoutes(
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

  /**
   * Forward to the backend Service {@code service}'s {@code port} under {@code entry}'s rule;
   * {@code backend} is the rule's backendRef that was picked (its own filters apply to this
   * request).
   */
  public record ToBackend(
      HttpRouteEntry entry, HttpRoute.Backend backend, MeshService service, ServicePort port)
      implements Decision {}

  /**
   * The matched rule has a RequestRedirect filter: the proxy answers with it ({@link
   * #redirectLocation}) and no backend is picked.
   */
  public record Redirected(HttpRouteEntry entry, HttpRoute.Redirect redirect) implements Decision {}

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
      HttpRoute.Redirect redirect = e.rule().redirect();
      if (redirect != null) {
        return new Redirected(e, redirect);
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
    return new ToBackend(entry, chosen, svc, port);
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
    return replacePath(entry, target, rw.fullPath(), rw.prefix());
  }

  /**
   * {@code target} (path and query) with its path replaced whole ({@code full}) or in the part the
   * entry's PathPrefix match matched ({@code prefix}); the query is kept. Both null: unchanged.
   */
  private static String replacePath(
      HttpRouteEntry entry, String target, @Nullable String full, @Nullable String prefix) {
    int q = target.indexOf('?');
    String path = q < 0 ? target : target.substring(0, q);
    String query = q < 0 ? "" : target.substring(q);
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

  /**
   * The {@code Location} of a RequestRedirect (Gateway API {@code HTTPRequestRedirectFilter}): the
   * request's URL with each part the filter sets replaced. Scheme: the filter's, else "http" (the
   * mesh's L7 path is plaintext inside the pod). Host: the filter's hostname, else the request's
   * Host without its port ({@code serviceName} when it sent none or one that is not a host). Port:
   * the filter's; else the new scheme's well-known port when the filter sets a scheme; else the
   * Service port the client dialled (Gateway API's listener port); a scheme's well-known port (http
   * 80, https 443) is not written. Path: replaced as URLRewrite replaces it, the query kept.
   *
   * @param target the request target (origin form, normalised)
   * @param host the request's Host (or {@code :authority}), null when absent
   */
  public static String redirectLocation(
      HttpRouteEntry entry,
      HttpRoute.Redirect redirect,
      String target,
      @Nullable String host,
      String serviceName,
      int servicePort) {
    String newScheme = redirect.scheme();
    String scheme = newScheme != null ? newScheme : "http";
    String hostname = redirect.hostname();
    if (hostname == null) {
      hostname = hostOnly(host);
      if (hostname == null) {
        hostname = serviceName;
      }
    }
    int port;
    if (redirect.port() != 0) {
      port = redirect.port();
    } else if (newScheme != null) {
      port = wellKnownPort(scheme);
    } else {
      port = servicePort;
    }
    String path = replacePath(entry, target, redirect.fullPath(), redirect.prefix());
    if (!path.startsWith("/")) {
      path = "/" + path; // an asterisk-form or empty target: the redirect names the root
    }
    StringBuilder sb = new StringBuilder(scheme.length() + hostname.length() + path.length() + 10);
    sb.append(scheme).append("://").append(hostname);
    if (port != wellKnownPort(scheme)) {
      sb.append(':').append(port);
    }
    return sb.append(path).toString();
  }

  private static int wellKnownPort(String scheme) {
    return scheme.equals("https") ? 443 : 80;
  }

  /**
   * The host part of a Host header ({@code name}, {@code name:port}, {@code [v6]} or {@code
   * [v6]:port}), or null when absent or not made of the characters a host may have (it goes into a
   * header the client follows).
   */
  static @Nullable String hostOnly(@Nullable String host) {
    if (host == null || host.isEmpty()) {
      return null;
    }
    String h = host;
    if (h.startsWith("[")) {
      int close = h.indexOf(']');
      if (close < 0) {
        return null;
      }
      h = h.substring(0, close + 1);
    } else {
      int colon = h.indexOf(':');
      if (colon >= 0) {
        h = h.substring(0, colon);
      }
    }
    for (int i = 0; i < h.length(); i++) {
      char c = h.charAt(i);
      boolean ok =
          (c >= 'a' && c <= 'z')
              || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9')
              || c == '.'
              || c == '-'
              || c == '_'
              || c == '['
              || c == ']'
              || c == ':';
      if (!ok) {
        return null;
      }
    }
    return h.isEmpty() ? null : h;
  }

  /** The Host after the rule's URLRewrite hostname, or null to keep the client's. */
  public static @Nullable String rewriteHost(HttpRouteEntry entry) {
    HttpRoute.Rewrite rw = entry.rule().rewrite();
    return rw == null ? null : rw.hostname();
  }
}
