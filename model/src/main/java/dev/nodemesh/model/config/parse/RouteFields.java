package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TextMatch;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The Gateway API route parts HTTPRoute and GRPCRoute share: parent refs, backends, filters (header
 * modifiers, rewrites, mirrors, extension refs), matches and the HTTPRoute rule itself.
 */
abstract class RouteFields extends YamlFields {
  RouteFields(String file, List<String> errors) {
    super(file, errors);
  }

  /** The annotation that lets a route retry non-idempotent methods (a nodemesh extension). */
  public static final String RETRY_NON_IDEMPOTENT = "nodemesh.dev/retry-non-idempotent";

  /**
   * The Service parentRefs of a route (GAMMA); other parents (Gateways) are skipped. A parentRef
   * may name a Service in any namespace: in the route's own it is a producer route, elsewhere a
   * consumer route that shapes only calls from the route's namespace ({@link HttpRoute#role}); so a
   * parentRef namespace needs no ReferenceGrant, but it must be a namespace name, since an empty or
   * malformed one would otherwise read as "another namespace".
   */
  List<HttpRoute.Parent> parents(JsonNode spec, String namespace) {
    List<HttpRoute.Parent> parents = new ArrayList<>();
    JsonNode refs = spec.path("parentRefs");
    boolean anyParent = false;
    if (array(refs, "spec.parentRefs")) {
      for (int i = 0; i < refs.size(); i++) {
        String path = "spec.parentRefs[" + i + "]";
        JsonNode ref = refs.get(i);
        anyParent = true;
        String group = text(ref, "group", path + ".group");
        String kind = text(ref, "kind", path + ".kind");
        // Gateway API defaults a parentRef to a Gateway: only explicit Service refs are ours.
        if (!"Service".equals(kind)
            || !(group == null || group.isEmpty() || group.equals("core"))) {
          continue;
        }
        String name = text(ref, "name", path + ".name");
        String ns = text(ref, "namespace", path + ".namespace");
        Integer port =
            ref.has("port") ? port(ref, "port", path + ".port", false) : Integer.valueOf(0);
        if (ns != null && !NAMESPACE.matcher(ns).matches()) {
          error(
              path + ".namespace",
              quote(ns)
                  + " is not a namespace name (omit it for the route's own namespace, "
                  + namespace
                  + ")");
        } else if (name == null || name.isEmpty()) {
          error(path + ".name", "is required");
        } else if (port != null) {
          parents.add(
              new HttpRoute.Parent(new NamespacedName(ns == null ? namespace : ns, name), port));
        }
      }
    }
    if (!anyParent) {
      error("spec.parentRefs", "at least one parentRef is required");
    }
    return parents;
  }

  /** A Kubernetes namespace name: an RFC 1123 label. */
  private static final java.util.regex.Pattern NAMESPACE =
      java.util.regex.Pattern.compile("[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?");

  HttpRoute.@Nullable Rule rule(JsonNode rule, String path, String namespace) {
    int before = errors.size();
    List<HttpRoute.Match> matches = new ArrayList<>();
    JsonNode list = rule.path("matches");
    if (array(list, path + ".matches")) {
      for (int i = 0; i < list.size(); i++) {
        HttpRoute.Match m = match(list.get(i), path + ".matches[" + i + "]");
        if (m != null) {
          matches.add(m);
        }
      }
    }
    if (matches.isEmpty()) {
      matches.add(HttpRoute.Match.everything());
    }
    List<HttpRoute.Backend> backends = backends(rule, path, namespace);
    Filters fl = filters(rule.path("filters"), path + ".filters", namespace, matches, false);
    HttpRoute.HeaderModifier request = fl.request;
    HttpRoute.HeaderModifier response = fl.response;
    HttpRoute.Rewrite rewrite = fl.rewrite;
    JsonNode timeouts = rule.path("timeouts");
    Duration requestTimeout = duration(timeouts, "request", path + ".timeouts.request");
    Duration backendTimeout =
        duration(timeouts, "backendRequest", path + ".timeouts.backendRequest");
    if (requestTimeout != null
        && backendTimeout != null
        && backendTimeout.compareTo(requestTimeout) > 0) {
      error(path + ".timeouts.backendRequest", "must not be longer than timeouts.request");
    }
    HttpRoute.Retry retry = null;
    JsonNode r = rule.path("retry");
    if (!r.isMissingNode() && !r.isNull()) {
      Set<Integer> codes = new java.util.TreeSet<>();
      JsonNode codeList = r.path("codes");
      if (array(codeList, path + ".retry.codes")) {
        for (int i = 0; i < codeList.size(); i++) {
          JsonNode c = codeList.get(i);
          if (!c.isIntegralNumber() || c.intValue() < 400 || c.intValue() > 599) {
            error(
                path + ".retry.codes[" + i + "]", quote(c.asText()) + " is not a code in 400-599");
          } else {
            codes.add(c.intValue());
          }
        }
      }
      int attempts = 1;
      JsonNode a = r.path("attempts");
      if (!a.isMissingNode() && !a.isNull()) {
        if (!a.isIntegralNumber() || a.intValue() < 0 || a.intValue() > 10) {
          error(path + ".retry.attempts", quote(a.asText()) + " is not an integer in 0-10");
        } else {
          attempts = a.intValue();
        }
      }
      Duration backoff = duration(r, "backoff", path + ".retry.backoff");
      retry =
          new HttpRoute.Retry(attempts, codes, backoff == null ? Duration.ofMillis(25) : backoff);
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Rule(
        matches,
        backends,
        request,
        response,
        rewrite,
        requestTimeout,
        backendTimeout,
        retry,
        fl.fault,
        fl.mirror,
        fl.redirect);
  }

  List<HttpRoute.Backend> backends(JsonNode rule, String path, String namespace) {
    List<HttpRoute.Backend> backends = new ArrayList<>();
    JsonNode refs = rule.path("backendRefs");
    if (array(refs, path + ".backendRefs")) {
      for (int i = 0; i < refs.size(); i++) {
        String bpath = path + ".backendRefs[" + i + "]";
        JsonNode ref = refs.get(i);
        String group = text(ref, "group", bpath + ".group");
        String kind = text(ref, "kind", bpath + ".kind");
        if (!(kind == null || kind.equals("Service"))
            || !(group == null || group.isEmpty() || group.equals("core"))) {
          error(bpath + ".kind", "only Service backends are supported");
          continue;
        }
        String name = text(ref, "name", bpath + ".name");
        String ns = text(ref, "namespace", bpath + ".namespace");
        Integer port = port(ref, "port", bpath + ".port", true);
        int weight = 1;
        JsonNode w = ref.path("weight");
        if (!w.isMissingNode() && !w.isNull()) {
          if (!w.isIntegralNumber() || w.intValue() < 0 || w.intValue() > 1_000_000) {
            error(bpath + ".weight", quote(w.asText()) + " is not an integer in 0-1000000");
          } else {
            weight = w.intValue();
          }
        }
        Filters own = backendFilters(ref.path("filters"), bpath + ".filters");
        if (name == null || name.isEmpty()) {
          error(bpath + ".name", "is required");
        } else if (port != null) {
          backends.add(
              new HttpRoute.Backend(
                  new NamespacedName(ns == null ? namespace : ns, name),
                  port,
                  weight,
                  true,
                  own.request,
                  own.response));
        }
      }
    }
    return backends;
  }

  /**
   * A backendRef's own filters ({@code HTTPBackendRef.filters}, {@code GRPCBackendRef.filters}),
   * applied only to requests sent to that backend: the header modifiers, each at most once. Other
   * types Gateway API allows there (RequestMirror, RequestRedirect, URLRewrite, ExtensionRef) are
   * refused: accepting them and not applying them would route differently from what was written.
   */
  Filters backendFilters(JsonNode filters, String path) {
    Filters out = new Filters();
    eachFilter(
        filters,
        path,
        "backendRef",
        (type, f, fpath, seen) -> {
          if (!headerFilter(type, f, fpath, out)) {
            error(
                fpath + ".type",
                quote(type)
                    + " is not supported on a backendRef (RequestHeaderModifier and"
                    + " ResponseHeaderModifier are)");
          }
        });
    return out;
  }

  /** Handles one entry of a filter list; {@code seen} holds the types met so far, this one too. */
  @FunctionalInterface
  private interface FilterEntry {
    void handle(String type, JsonNode f, String fpath, Set<String> seen);
  }

  /**
   * Walks a filter list, a rule's or a backendRef's ({@code where}): each entry's type is required
   * and given at most once; {@code each} handles the rest.
   */
  private void eachFilter(JsonNode filters, String path, String where, FilterEntry each) {
    if (!array(filters, path)) {
      return;
    }
    Set<String> seen = new java.util.HashSet<>();
    for (int i = 0; i < filters.size(); i++) {
      String fpath = path + "[" + i + "]";
      JsonNode f = filters.get(i);
      String type = text(f, "type", fpath + ".type");
      if (type == null) {
        error(fpath + ".type", "is required");
        continue;
      }
      if (!seen.add(type)) {
        error(fpath + ".type", quote(type) + " is given twice in one " + where);
        continue;
      }
      each.handle(type, f, fpath, seen);
    }
  }

  /** The two header modifiers, allowed on rules and backendRefs alike; false for any other type. */
  private boolean headerFilter(String type, JsonNode f, String fpath, Filters out) {
    switch (type) {
      case "RequestHeaderModifier" ->
          out.request =
              headerModifier(f.path("requestHeaderModifier"), fpath + ".requestHeaderModifier");
      case "ResponseHeaderModifier" ->
          out.response =
              headerModifier(f.path("responseHeaderModifier"), fpath + ".responseHeaderModifier");
      default -> {
        return false;
      }
    }
    return true;
  }

  /** What a rule's filters say; every field optional. */
  static final class Filters {
    HttpRoute.HeaderModifier request = HttpRoute.HeaderModifier.NONE;
    HttpRoute.HeaderModifier response = HttpRoute.HeaderModifier.NONE;
    HttpRoute.@Nullable Rewrite rewrite;
    @Nullable NamespacedName fault;
    HttpRoute.@Nullable Mirror mirror;
    HttpRoute.@Nullable Redirect redirect;
  }

  /**
   * A rule's filters: header modifiers, URLRewrite and RequestRedirect (HTTPRoute only, not both in
   * one rule, as Gateway API says), RequestMirror, and an ExtensionRef to an {@code HTTPFault} in
   * the route's namespace. Each type at most once.
   */
  Filters filters(
      JsonNode filters,
      String path,
      String namespace,
      List<HttpRoute.Match> matches,
      boolean grpc) {
    Filters out = new Filters();
    eachFilter(
        filters,
        path,
        "rule",
        (type, f, fpath, seen) -> {
          if (headerFilter(type, f, fpath, out)) {
            return;
          }
          switch (type) {
            case "URLRewrite" -> {
              if (grpc) {
                error(fpath + ".type", "URLRewrite is not a GRPCRoute filter");
              } else if (seen.contains("RequestRedirect")) {
                error(fpath + ".type", "RequestRedirect and URLRewrite cannot be in one rule");
              } else {
                out.rewrite = rewrite(f.path("urlRewrite"), fpath + ".urlRewrite", matches);
              }
            }
            case "RequestRedirect" -> {
              if (grpc) {
                error(fpath + ".type", "RequestRedirect is not a GRPCRoute filter");
              } else if (seen.contains("URLRewrite")) {
                error(fpath + ".type", "RequestRedirect and URLRewrite cannot be in one rule");
              } else {
                out.redirect =
                    redirect(f.path("requestRedirect"), fpath + ".requestRedirect", matches);
              }
            }
            case "RequestMirror" ->
                out.mirror = mirror(f.path("requestMirror"), fpath + ".requestMirror", namespace);
            case "ExtensionRef" ->
                out.fault = extensionRef(f.path("extensionRef"), fpath, namespace);
            default -> error(fpath + ".type", quote(type) + " is not supported (yet)");
          }
        });
    return out;
  }

  /**
   * Gateway API's RequestRedirect filter ({@code HTTPRequestRedirectFilter}): scheme http or https,
   * a precise hostname, a path replacement as URLRewrite's, a port, status 301, 302 (the default),
   * 303, 307 or 308.
   */
  HttpRoute.@Nullable Redirect redirect(JsonNode r, String path, List<HttpRoute.Match> matches) {
    if (!r.isObject()) {
      error(path, "is required for this filter type");
      return null;
    }
    int before = errors.size();
    String scheme = text(r, "scheme", path + ".scheme");
    if (scheme != null && !FieldRules.REDIRECT_SCHEMES.contains(scheme)) {
      error(path + ".scheme", quote(scheme) + " is not http or https");
    }
    String hostname = text(r, "hostname", path + ".hostname");
    if (hostname != null && !FieldRules.isPreciseHostname(hostname)) {
      error(
          path + ".hostname",
          quote(hostname) + " is not a hostname (lower-case DNS labels, no wildcard)");
    }
    Integer port = port(r, "port", path + ".port", false);
    int status = HttpRoute.Redirect.DEFAULT_STATUS;
    JsonNode code = r.path("statusCode");
    if (!code.isMissingNode() && !code.isNull()) {
      if (!code.isIntegralNumber() || !HttpRoute.Redirect.STATUS_CODES.contains(code.intValue())) {
        error(path + ".statusCode", quote(code.asText()) + " is not 301, 302, 303, 307 or 308");
      } else {
        status = code.intValue();
      }
    }
    String full = null;
    String prefix = null;
    JsonNode p = r.path("path");
    if (!p.isMissingNode() && !p.isNull()) {
      String type = text(p, "type", path + ".path.type");
      if ("ReplaceFullPath".equals(type)) {
        full = text(p, "replaceFullPath", path + ".path.replaceFullPath");
        if (full == null || !FieldRules.isReplacementPath(full)) {
          error(
              path + ".path.replaceFullPath",
              "is required and must be a path starting with \"/\" (no space, '?' or '#')");
        }
      } else if ("ReplacePrefixMatch".equals(type)) {
        prefix = text(p, "replacePrefixMatch", path + ".path.replacePrefixMatch");
        if (prefix == null || !FieldRules.isReplacementPath(prefix)) {
          error(
              path + ".path.replacePrefixMatch",
              "is required and must be a path starting with \"/\" (no space, '?' or '#')");
        }
        for (HttpRoute.Match m : matches) {
          if (m.path().kind() != TextMatch.Kind.PATH_PREFIX) {
            error(
                path + ".path.type",
                "ReplacePrefixMatch needs every match of the rule to be a PathPrefix");
            break;
          }
        }
      } else {
        error(path + ".path.type", quote(type) + " is not ReplaceFullPath or ReplacePrefixMatch");
      }
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Redirect(scheme, hostname, full, prefix, port == null ? 0 : port, status);
  }

  /** The API group of the mesh's traffic kinds (HTTPFault). */
  public static final String TRAFFIC_GROUP = "traffic.nodemesh.dev";

  @Nullable NamespacedName extensionRef(JsonNode ref, String fpath, String namespace) {
    String path = fpath + ".extensionRef";
    if (!ref.isObject()) {
      error(path, "is required for this filter type");
      return null;
    }
    String group = text(ref, "group", path + ".group");
    String kind = text(ref, "kind", path + ".kind");
    String name = text(ref, "name", path + ".name");
    if (!TRAFFIC_GROUP.equals(group) || !"HTTPFault".equals(kind)) {
      error(
          path,
          "only group "
              + TRAFFIC_GROUP
              + ", kind HTTPFault is supported (found "
              + group
              + "/"
              + kind
              + ")");
      return null;
    }
    if (name == null || name.isEmpty()) {
      error(path + ".name", "is required");
      return null;
    }
    return new NamespacedName(namespace, name);
  }

  HttpRoute.@Nullable Mirror mirror(JsonNode m, String path, String namespace) {
    if (!m.isObject()) {
      error(path, "is required for this filter type");
      return null;
    }
    JsonNode ref = m.path("backendRef");
    String bpath = path + ".backendRef";
    String group = text(ref, "group", bpath + ".group");
    String kind = text(ref, "kind", bpath + ".kind");
    if (!(kind == null || kind.equals("Service"))
        || !(group == null || group.isEmpty() || group.equals("core"))) {
      error(bpath + ".kind", "only Service backends are supported");
      return null;
    }
    String name = text(ref, "name", bpath + ".name");
    String ns = text(ref, "namespace", bpath + ".namespace");
    Integer port = port(ref, "port", bpath + ".port", true);
    int percent = 100;
    JsonNode p = m.path("percent");
    if (!p.isMissingNode() && !p.isNull()) {
      if (!p.isIntegralNumber() || p.intValue() < 0 || p.intValue() > 100) {
        error(path + ".percent", quote(p.asText()) + " is not an integer in 0-100");
      } else {
        percent = p.intValue();
      }
    }
    if (m.has("fraction")) {
      error(path + ".fraction", "is not supported; use percent");
    }
    if (name == null || name.isEmpty()) {
      error(bpath + ".name", "is required");
      return null;
    }
    return port == null
        ? null
        : new HttpRoute.Mirror(
            new NamespacedName(ns == null ? namespace : ns, name), port, percent);
  }

  HttpRoute.@Nullable Match match(JsonNode m, String path) {
    int before = errors.size();
    TextMatch pathMatch = TextMatch.pathPrefix("/");
    JsonNode p = m.path("path");
    if (!p.isMissingNode() && !p.isNull()) {
      String type = text(p, "type", path + ".path.type");
      String value = text(p, "value", path + ".path.value");
      value = value == null ? "/" : value;
      TextMatch.Kind kind =
          switch (type == null ? "PathPrefix" : type) {
            case "Exact" -> TextMatch.Kind.EXACT;
            case "PathPrefix" -> TextMatch.Kind.PATH_PREFIX;
            case "RegularExpression" -> TextMatch.Kind.REGULAR_EXPRESSION;
            default -> {
              error(
                  path + ".path.type",
                  quote(type) + " is not Exact, PathPrefix or RegularExpression");
              yield null;
            }
          };
      if (kind != TextMatch.Kind.REGULAR_EXPRESSION && !value.startsWith("/")) {
        error(path + ".path.value", quote(value) + " must start with \"/\"");
      } else if (kind != null) {
        TextMatch t = textMatch(kind, "", value, path + ".path.value");
        if (t != null) {
          pathMatch = t;
        }
      }
    }
    List<TextMatch> headers = nameValueMatches(m.path("headers"), path + ".headers", true);
    List<TextMatch> query = nameValueMatches(m.path("queryParams"), path + ".queryParams", false);
    String method = text(m, "method", path + ".method");
    if (method != null && !FieldRules.isHttpMethod(method)) {
      error(path + ".method", quote(method) + " is not an HTTP method Gateway API allows");
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Match(pathMatch, headers, query, method);
  }

  List<TextMatch> nameValueMatches(JsonNode list, String path, boolean header) {
    List<TextMatch> out = new ArrayList<>();
    if (!array(list, path)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      String ipath = path + "[" + i + "]";
      JsonNode n = list.get(i);
      String type = text(n, "type", ipath + ".type");
      String name = text(n, "name", ipath + ".name");
      String value = text(n, "value", ipath + ".value");
      if (name == null || name.isEmpty() || (header && !HEADER_NAME.matcher(name).matches())) {
        error(ipath + ".name", name == null ? "is required" : quote(name) + " is not a valid name");
        continue;
      }
      if (value == null) {
        error(ipath + ".value", "is required");
        continue;
      }
      TextMatch.Kind kind;
      if (type == null || type.equals("Exact")) {
        kind = TextMatch.Kind.EXACT;
      } else if (type.equals("RegularExpression")) {
        kind = TextMatch.Kind.REGULAR_EXPRESSION;
      } else {
        error(ipath + ".type", quote(type) + " is not Exact or RegularExpression");
        continue;
      }
      // Header names compare case-insensitively: kept lower case, as HTTP/2 sends them.
      TextMatch t =
          textMatch(
              kind,
              header ? name.toLowerCase(java.util.Locale.ROOT) : name,
              value,
              ipath + ".value");
      if (t != null) {
        out.add(t);
      }
    }
    return out;
  }

  HttpRoute.HeaderModifier headerModifier(JsonNode m, String path) {
    if (!m.isObject()) {
      error(path, "is required for this filter type");
      return HttpRoute.HeaderModifier.NONE;
    }
    Map<String, String> set = headerList(m.path("set"), path + ".set");
    Map<String, String> add = headerList(m.path("add"), path + ".add");
    Set<String> remove = new java.util.LinkedHashSet<>();
    JsonNode list = m.path("remove");
    if (array(list, path + ".remove")) {
      for (int i = 0; i < list.size(); i++) {
        String name = scalar(list.get(i), path + ".remove[" + i + "]");
        if (name != null && HEADER_NAME.matcher(name).matches()) {
          remove.add(name.toLowerCase(java.util.Locale.ROOT));
        } else if (name != null) {
          error(path + ".remove[" + i + "]", quote(name) + " is not a valid header name");
        }
      }
    }
    return new HttpRoute.HeaderModifier(set, add, remove);
  }

  Map<String, String> headerList(JsonNode list, String path) {
    Map<String, String> out = new LinkedHashMap<>();
    if (!array(list, path)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      String ipath = path + "[" + i + "]";
      String name = text(list.get(i), "name", ipath + ".name");
      String value = text(list.get(i), "value", ipath + ".value");
      if (name == null || !HEADER_NAME.matcher(name).matches()) {
        error(
            ipath + ".name",
            name == null ? "is required" : quote(name) + " is not a valid header name");
      } else if (value == null || value.indexOf('\r') >= 0 || value.indexOf('\n') >= 0) {
        error(ipath + ".value", value == null ? "is required" : "must not contain CR or LF");
      } else if (out.put(name.toLowerCase(java.util.Locale.ROOT), value) != null) {
        error(ipath + ".name", quote(name) + " is listed twice");
      }
    }
    return out;
  }

  HttpRoute.@Nullable Rewrite rewrite(JsonNode r, String path, List<HttpRoute.Match> matches) {
    if (!r.isObject()) {
      error(path, "is required for this filter type");
      return null;
    }
    String hostname = text(r, "hostname", path + ".hostname");
    JsonNode p = r.path("path");
    String full = null;
    String prefix = null;
    if (!p.isMissingNode() && !p.isNull()) {
      String type = text(p, "type", path + ".path.type");
      if ("ReplaceFullPath".equals(type)) {
        full = text(p, "replaceFullPath", path + ".path.replaceFullPath");
        if (full == null || !full.startsWith("/")) {
          error(path + ".path.replaceFullPath", "is required and must start with \"/\"");
        }
      } else if ("ReplacePrefixMatch".equals(type)) {
        prefix = text(p, "replacePrefixMatch", path + ".path.replacePrefixMatch");
        if (prefix == null || !prefix.startsWith("/")) {
          error(path + ".path.replacePrefixMatch", "is required and must start with \"/\"");
        }
        for (HttpRoute.Match m : matches) {
          if (m.path().kind() != TextMatch.Kind.PATH_PREFIX) {
            error(
                path + ".path.type",
                "ReplacePrefixMatch needs every match of the rule to be a PathPrefix");
            break;
          }
        }
      } else {
        error(path + ".path.type", quote(type) + " is not ReplaceFullPath or ReplacePrefixMatch");
      }
    }
    return new HttpRoute.Rewrite(hostname, full, prefix);
  }
}
