package dev.nodemesh.model.kind;

import dev.nodemesh.api.config.v1.BackendRef;
import dev.nodemesh.api.config.v1.HeaderModifier;
import dev.nodemesh.api.config.v1.HttpMatch;
import dev.nodemesh.api.config.v1.HttpRouteRule;
import dev.nodemesh.api.config.v1.RequestRedirect;
import dev.nodemesh.api.config.v1.RetryPolicy;
import dev.nodemesh.api.config.v1.RouteParent;
import dev.nodemesh.api.config.v1.StringMatch;
import dev.nodemesh.api.config.v1.UrlRewrite;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.TextMatch;
import dev.nodemesh.model.config.parse.GrpcRouteParser;
import dev.nodemesh.model.config.parse.HttpRouteParser;
import dev.nodemesh.model.kind.YamlKind.ApiVersions;
import dev.nodemesh.model.proto.ProtoFields;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.jspecify.annotations.Nullable;

/**
 * Gateway API HTTPRoutes and GRPCRoutes attached to Services (GAMMA): both travel as {@code
 * HttpRoute} resources ({@link HttpRoute#grpc()} tells them apart), a GRPCRoute under {@code
 * GRPCRoute/<ns>/<name>} so the two kinds may share a name as in Kubernetes. Before a route is sent
 * its cross-namespace backendRefs are checked against the ReferenceGrants ({@link
 * ReferenceGrantKind#SLOT}), so proxies need none of their own.
 */
public final class HttpRouteKind {
  private HttpRouteKind() {}

  /** What a GRPCRoute's resource name starts with. */
  public static final String GRPC_ROUTE_PREFIX = "GRPCRoute/";

  public static final ResourceKind<dev.nodemesh.api.config.v1.HttpRoute, HttpRoute> WIRE =
      ResourceKind.builder(
              "HttpRoute",
              dev.nodemesh.api.config.v1.HttpRoute.class,
              dev.nodemesh.api.config.v1.HttpRoute.getDescriptor(),
              HttpRoute.class)
          .decode(HttpRouteKind::decode)
          .encode(HttpRouteKind::encode)
          .resolve(
              (r, in) -> ReferenceGrant.apply(r, in.of(ReferenceGrantKind.SLOT)),
              ReferenceGrantKind.SLOT)
          .order(
              Comparator.comparing(HttpRoute::namespace)
                  .thenComparing(HttpRoute::name)
                  .thenComparing(HttpRoute::grpc))
          .build();

  public static final YamlKind<HttpRoute> HTTP_ROUTE =
      new YamlKind<>(
          "HTTPRoute",
          ReferenceGrant.GATEWAY_GROUP,
          "v1",
          "httproutes",
          ApiVersions.GROUP,
          false,
          (file, errors, doc, label) -> new HttpRouteParser(file, errors).parse(doc, label),
          WIRE,
          HttpRoute::id,
          id -> resourceName(id.namespace(), id.name(), false));

  /**
   * Sent as an {@code HttpRoute} with {@code grpc} set, under {@code GRPCRoute/<ns>/<name>} so a
   * GRPCRoute and an HTTPRoute of the same name do not replace each other.
   */
  public static final YamlKind<HttpRoute> GRPC_ROUTE =
      new YamlKind<>(
          "GRPCRoute",
          ReferenceGrant.GATEWAY_GROUP,
          "v1",
          "grpcroutes",
          ApiVersions.GROUP,
          false,
          (file, errors, doc, label) -> new GrpcRouteParser(file, errors).parse(doc, label),
          WIRE,
          HttpRoute::id,
          id -> resourceName(id.namespace(), id.name(), true));

  /**
   * The resource name of an HTTPRoute or GRPCRoute: {@code <namespace>/<name>} for an HTTPRoute,
   * {@code GRPCRoute/<namespace>/<name>} for a GRPCRoute. A namespace never contains "/", so the
   * two forms cannot meet.
   */
  public static String resourceName(HttpRoute r) {
    return resourceName(r.namespace(), r.name(), r.grpc());
  }

  /** See {@link #resourceName(HttpRoute)}. */
  public static String resourceName(String namespace, String name, boolean grpc) {
    return (grpc ? GRPC_ROUTE_PREFIX : "") + YamlKind.plainName(namespace, name);
  }

  /** An HTTPRoute as its resource; maps are sorted by protobuf's map encoding, lists kept. */
  public static dev.nodemesh.api.config.v1.HttpRoute encode(HttpRoute r) {
    var b =
        dev.nodemesh.api.config.v1.HttpRoute.newBuilder()
            .setName(r.name())
            .setNamespace(r.namespace())
            .setRetryNonIdempotent(r.retryNonIdempotent())
            .setCreatedEpochSeconds(r.createdEpochSeconds())
            .setGrpc(r.grpc());
    for (HttpRoute.Parent p : r.parents()) {
      b.addParents(
          RouteParent.newBuilder()
              .setNamespace(p.service().namespace())
              .setService(p.service().name())
              .setPort(p.port()));
    }
    for (HttpRoute.Rule rule : r.rules()) {
      HttpRouteRule.Builder rb = HttpRouteRule.newBuilder();
      for (HttpRoute.Match m : rule.matches()) {
        HttpMatch.Builder mb = HttpMatch.newBuilder().setPath(text(m.path()));
        m.headers().forEach(h -> mb.addHeaders(text(h)));
        m.queryParams().forEach(q -> mb.addQueryParams(text(q)));
        String method = m.method();
        if (method != null) {
          mb.setMethod(method);
        }
        rb.addMatches(mb);
      }
      for (HttpRoute.Backend be : rule.backends()) {
        rb.addBackends(
            BackendRef.newBuilder()
                .setNamespace(be.service().namespace())
                .setService(be.service().name())
                .setPort(be.port())
                .setWeight(be.weight())
                .setNotPermitted(!be.permitted())
                .setRequestHeaders(modifier(be.requestHeaders()))
                .setResponseHeaders(modifier(be.responseHeaders())));
      }
      rb.setRequestHeaders(modifier(rule.requestHeaders()));
      rb.setResponseHeaders(modifier(rule.responseHeaders()));
      HttpRoute.Rewrite rw = rule.rewrite();
      if (rw != null) {
        UrlRewrite.Builder ub = UrlRewrite.newBuilder();
        String host = rw.hostname();
        String full = rw.fullPath();
        String prefix = rw.prefix();
        if (host != null) {
          ub.setHostname(host);
        }
        if (full != null) {
          ub.setReplaceFullPath(full);
        } else if (prefix != null) {
          ub.setReplacePrefixMatch(prefix);
        }
        rb.setRewrite(ub);
      }
      Duration request = rule.requestTimeout();
      Duration backend = rule.backendTimeout();
      if (request != null) {
        rb.setRequestTimeoutMs(request.toMillis());
      }
      if (backend != null) {
        rb.setBackendRequestTimeoutMs(backend.toMillis());
      }
      HttpRoute.Retry retry = rule.retry();
      if (retry != null) {
        rb.setRetry(
            RetryPolicy.newBuilder()
                .setAttempts(retry.attempts())
                .addAllCodes(new TreeSet<>(retry.codes()))
                .setBackoffMs(retry.backoff().toMillis()));
      }
      NamespacedName fault = rule.fault();
      if (fault != null) {
        rb.setFault(fault.name());
      }
      HttpRoute.Mirror mirror = rule.mirror();
      if (mirror != null) {
        rb.setMirror(
            dev.nodemesh.api.config.v1.MirrorRef.newBuilder()
                .setNamespace(mirror.service().namespace())
                .setService(mirror.service().name())
                .setPort(mirror.port())
                .setPercent(mirror.percent()));
      }
      HttpRoute.Redirect redirect = rule.redirect();
      if (redirect != null) {
        rb.setRedirect(redirect(redirect));
      }
      b.addRules(rb);
    }
    return b.build();
  }

  private static RequestRedirect redirect(HttpRoute.Redirect r) {
    RequestRedirect.Builder b =
        RequestRedirect.newBuilder().setPort(r.port()).setStatusCode(r.statusCode());
    String scheme = r.scheme();
    String host = r.hostname();
    String full = r.fullPath();
    String prefix = r.prefix();
    if (scheme != null) {
      b.setScheme(scheme);
    }
    if (host != null) {
      b.setHostname(host);
    }
    if (full != null) {
      b.setReplaceFullPath(full);
    } else if (prefix != null) {
      b.setReplacePrefixMatch(prefix);
    }
    return b.build();
  }

  private static StringMatch text(TextMatch t) {
    StringMatch.Kind kind =
        switch (t.kind()) {
          case EXACT -> StringMatch.Kind.EXACT;
          case PATH_PREFIX -> StringMatch.Kind.PATH_PREFIX;
          case REGULAR_EXPRESSION -> StringMatch.Kind.REGULAR_EXPRESSION;
        };
    return StringMatch.newBuilder().setKind(kind).setName(t.name()).setValue(t.value()).build();
  }

  private static HeaderModifier modifier(HttpRoute.HeaderModifier m) {
    return HeaderModifier.newBuilder()
        .putAllSet(m.set())
        .putAllAdd(m.add())
        .addAllRemove(new TreeSet<>(m.remove()))
        .build();
  }

  static @Nullable HttpRoute decode(ProtoFields f, dev.nodemesh.api.config.v1.HttpRoute r) {
    // A GRPCRoute's name carries its kind, so it cannot collide with an HTTPRoute of the same name.
    f.identity(r.getNamespace(), r.getName(), r.getGrpc() ? GRPC_ROUTE_PREFIX : "");
    List<HttpRoute.Parent> parents = new ArrayList<>();
    for (int i = 0; i < r.getParentsCount(); i++) {
      RouteParent p = r.getParents(i);
      String path = "parents[" + i + "]";
      if (p.getService().isEmpty() || p.getNamespace().isEmpty()) {
        f.error(path, "namespace and service are required");
      } else if (p.getPort() == 0 || f.port(p.getPort(), path + ".port")) {
        parents.add(
            new HttpRoute.Parent(
                new NamespacedName(p.getNamespace(), p.getService()), p.getPort()));
      }
    }
    if (parents.isEmpty()) {
      f.error("parents", "at least one parent Service is required");
    }
    List<HttpRoute.Rule> rules = new ArrayList<>();
    for (int i = 0; i < r.getRulesCount(); i++) {
      HttpRoute.Rule rule = rule(f, r.getRules(i), "rules[" + i + "]", r.getNamespace());
      if (rule != null) {
        rules.add(rule);
      }
    }
    if (f.failed()) {
      return null;
    }
    return new HttpRoute(
        r.getName(),
        r.getNamespace(),
        parents,
        rules,
        r.getRetryNonIdempotent(),
        r.getCreatedEpochSeconds(),
        r.getGrpc());
  }

  private static HttpRoute.@Nullable Rule rule(
      ProtoFields f, HttpRouteRule r, String path, String namespace) {
    List<HttpRoute.Match> matches = new ArrayList<>();
    for (int i = 0; i < r.getMatchesCount(); i++) {
      HttpMatch m = r.getMatches(i);
      String mpath = path + ".matches[" + i + "]";
      TextMatch p = f.text(m.getPath(), mpath + ".path");
      List<TextMatch> headers = new ArrayList<>();
      for (int j = 0; j < m.getHeadersCount(); j++) {
        TextMatch t = f.text(m.getHeaders(j), mpath + ".headers[" + j + "]");
        if (t != null) {
          headers.add(t);
        }
      }
      List<TextMatch> query = new ArrayList<>();
      for (int j = 0; j < m.getQueryParamsCount(); j++) {
        TextMatch t = f.text(m.getQueryParams(j), mpath + ".query_params[" + j + "]");
        if (t != null) {
          query.add(t);
        }
      }
      if (p != null) {
        matches.add(
            new HttpRoute.Match(p, headers, query, m.getMethod().isEmpty() ? null : m.getMethod()));
      }
    }
    if (r.getMatchesCount() == 0) {
      f.error(path + ".matches", "at least one match is required");
    }
    List<HttpRoute.Backend> backends = new ArrayList<>();
    for (int i = 0; i < r.getBackendsCount(); i++) {
      BackendRef b = r.getBackends(i);
      if (b.getService().isEmpty() || b.getNamespace().isEmpty()) {
        f.error(path + ".backends[" + i + "]", "namespace and service are required");
      } else if (f.port(b.getPort(), path + ".backends[" + i + "].port")) {
        HttpRoute.HeaderModifier request =
            modifier(f, b.getRequestHeaders(), path + ".backends[" + i + "].request_headers");
        HttpRoute.HeaderModifier response =
            modifier(f, b.getResponseHeaders(), path + ".backends[" + i + "].response_headers");
        backends.add(
            new HttpRoute.Backend(
                new NamespacedName(b.getNamespace(), b.getService()),
                b.getPort(),
                b.getWeight(),
                !b.getNotPermitted(),
                request,
                response));
      }
    }
    HttpRoute.HeaderModifier requestHeaders =
        modifier(f, r.getRequestHeaders(), path + ".request_headers");
    HttpRoute.HeaderModifier responseHeaders =
        modifier(f, r.getResponseHeaders(), path + ".response_headers");
    HttpRoute.Redirect redirect = r.hasRedirect() ? redirect(f, r, path, matches) : null;
    HttpRoute.Rewrite rewrite = null;
    if (r.hasRewrite()) {
      UrlRewrite u = r.getRewrite();
      rewrite =
          new HttpRoute.Rewrite(
              u.getHostname().isEmpty() ? null : u.getHostname(),
              u.hasReplaceFullPath() ? u.getReplaceFullPath() : null,
              u.hasReplacePrefixMatch() ? u.getReplacePrefixMatch() : null);
    }
    HttpRoute.Mirror mirror = null;
    if (r.hasMirror()) {
      var m = r.getMirror();
      if (m.getService().isEmpty() || m.getNamespace().isEmpty() || m.getPercent() > 100) {
        f.error(path + ".mirror", "namespace and service are required, percent 0-100");
      } else if (f.port(m.getPort(), path + ".mirror.port")) {
        mirror =
            new HttpRoute.Mirror(
                new NamespacedName(m.getNamespace(), m.getService()), m.getPort(), m.getPercent());
      }
    }
    HttpRoute.Retry retry = null;
    if (r.hasRetry()) {
      Set<Integer> codes = new HashSet<>();
      for (int c : r.getRetry().getCodesList()) {
        if (c < 400 || c > 599) {
          f.error(path + ".retry.codes", c + " is not in 400-599");
        }
        codes.add(c);
      }
      retry =
          new HttpRoute.Retry(
              r.getRetry().getAttempts(), codes, Duration.ofMillis(r.getRetry().getBackoffMs()));
    }
    // Any problem in the route (this rule's or an earlier one's) means no route at all, so no rule
    // is built once one is recorded (its records would check their arguments again).
    if (f.failed()) {
      return null;
    }
    return new HttpRoute.Rule(
        matches,
        backends,
        requestHeaders,
        responseHeaders,
        rewrite,
        r.getRequestTimeoutMs() == 0 ? null : Duration.ofMillis(r.getRequestTimeoutMs()),
        r.getBackendRequestTimeoutMs() == 0
            ? null
            : Duration.ofMillis(r.getBackendRequestTimeoutMs()),
        retry,
        r.getFault().isEmpty() ? null : new NamespacedName(namespace, r.getFault()),
        mirror,
        redirect);
  }

  /**
   * A rule's RequestRedirect, checked as the YAML parser checks it (scheme, hostname, path, port,
   * status); null after recording a problem. Status 0 is Gateway API's default, 302.
   */
  private static HttpRoute.@Nullable Redirect redirect(
      ProtoFields f, HttpRouteRule r, String path, List<HttpRoute.Match> matches) {
    RequestRedirect rd = r.getRedirect();
    String rpath = path + ".redirect";
    boolean ok = true;
    String scheme = rd.getScheme().isEmpty() ? null : rd.getScheme();
    if (scheme != null && !FieldRules.REDIRECT_SCHEMES.contains(scheme)) {
      f.error(rpath + ".scheme", "\"" + scheme + "\" is not http or https");
      ok = false;
    }
    String host = rd.getHostname().isEmpty() ? null : rd.getHostname();
    if (host != null && !FieldRules.isPreciseHostname(host)) {
      f.error(rpath + ".hostname", "\"" + host + "\" is not a precise hostname");
      ok = false;
    }
    String full = rd.hasReplaceFullPath() ? rd.getReplaceFullPath() : null;
    String prefix = rd.hasReplacePrefixMatch() ? rd.getReplacePrefixMatch() : null;
    if (full != null && !FieldRules.isReplacementPath(full)) {
      f.error(rpath + ".replace_full_path", "\"" + full + "\" is not a path");
      ok = false;
    }
    if (prefix != null) {
      if (!FieldRules.isReplacementPath(prefix)) {
        f.error(rpath + ".replace_prefix_match", "\"" + prefix + "\" is not a path");
        ok = false;
      }
      if (matches.stream().anyMatch(m -> m.path().kind() != TextMatch.Kind.PATH_PREFIX)) {
        f.error(rpath + ".replace_prefix_match", "needs every match to be a path prefix");
        ok = false;
      }
    }
    if (rd.getPort() != 0 && !f.port(rd.getPort(), rpath + ".port")) {
      ok = false;
    }
    int status = rd.getStatusCode() == 0 ? HttpRoute.Redirect.DEFAULT_STATUS : rd.getStatusCode();
    if (!HttpRoute.Redirect.STATUS_CODES.contains(status)) {
      f.error(rpath + ".status_code", status + " is not 301, 302, 303, 307 or 308");
      ok = false;
    }
    if (r.hasRewrite()) {
      f.error(rpath, "a rule with a redirect has no URL rewrite");
      ok = false;
    }
    return ok ? new HttpRoute.Redirect(scheme, host, full, prefix, rd.getPort(), status) : null;
  }

  /**
   * A header modifier, its names and values checked by the YAML parser's rules (a value with CR or
   * LF would split the head it is written into); names lower case, as the parser keeps them.
   */
  private static HttpRoute.HeaderModifier modifier(ProtoFields f, HeaderModifier m, String path) {
    boolean ok = true;
    for (var e : m.getSetMap().entrySet()) {
      ok &= header(f, e.getKey(), e.getValue(), path + ".set");
    }
    for (var e : m.getAddMap().entrySet()) {
      ok &= header(f, e.getKey(), e.getValue(), path + ".add");
    }
    for (String name : m.getRemoveList()) {
      ok &= header(f, name, "", path + ".remove");
    }
    if (!ok) {
      return HttpRoute.HeaderModifier.NONE;
    }
    return new HttpRoute.HeaderModifier(
        lowerKeys(m.getSetMap()),
        lowerKeys(m.getAddMap()),
        m.getRemoveList().stream()
            .map(n -> n.toLowerCase(Locale.ROOT))
            .collect(Collectors.toSet()));
  }

  private static boolean header(ProtoFields f, String name, String value, String path) {
    if (!FieldRules.isHeaderName(name)) {
      f.error(path, "\"" + name + "\" is not a valid header name");
      return false;
    }
    if (!FieldRules.isHeaderValue(value)) {
      f.error(path + "[" + name + "]", "the value must not contain CR, LF or NUL");
      return false;
    }
    return true;
  }

  private static Map<String, String> lowerKeys(Map<String, String> m) {
    Map<String, String> out = new LinkedHashMap<>();
    m.forEach((k, v) -> out.put(k.toLowerCase(Locale.ROOT), v));
    return out;
  }
}
