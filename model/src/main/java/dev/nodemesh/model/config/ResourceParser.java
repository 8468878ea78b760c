package dev.nodemesh.model.config;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import io.netty.util.NetUtil;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Map.Entry;
import java.util.Set;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Turns one parsed YAML document (a Pod, a Service or an HTTPRoute) into a record, checking each
 * field it reads and recording problems as {@code <file>: <Kind> <ns>/<name>: <field path>:
 * <problem>}. It walks the raw tree instead of binding to fabric8's model classes because binding
 * loses the field path of a type error and silently accepts values (bad IPs, port 70000) we must
 * reject. Only the fields routing uses are read; everything else in the object is ignored.
 *
 * <p>Public so the control plane's Kubernetes source validates objects from the API server by the
 * same rules as local YAML (it turns them into the same tree first).
 */
public final class ResourceParser {
  /** Kubernetes' IANA_SVC_NAME: what a named port may look like. */
  private static final Pattern PORT_DIGITS = Pattern.compile("[0-9]{1,5}");

  private static final Pattern PORT_NAME = Pattern.compile("[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?");

  private final List<String> errors;
  private final String file;

  /** Where the object being parsed is, for messages: "pods.yaml: Pod default/client". */
  private String where = "";

  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public ResourceParser(String file, List<String> errors) {
    this.file = file;
    this.errors = errors;
  }

  /** Returns the workload, or null after recording why the Pod is invalid. */
  public @Nullable Workload pod(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("Pod", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    String uid = text(meta, "uid", "metadata.uid");
    Map<String, String> labels = stringMap(meta.path("labels"), "metadata.labels");
    JsonNode spec = doc.path("spec");
    String serviceAccount = text(spec, "serviceAccountName", "spec.serviceAccountName");
    String nodeName = text(spec, "nodeName", "spec.nodeName");
    Map<String, Integer> namedPorts = namedPorts(spec);
    List<InetAddress> ips = podIps(doc.path("status"));
    if (id == null || errors.size() > before) {
      return null;
    }
    return new Workload(
        uid == null ? id.toString() : uid,
        id.name(),
        id.namespace(),
        ips,
        labels,
        serviceAccount == null ? "default" : serviceAccount,
        nodeName == null ? "" : nodeName,
        namedPorts);
  }

  /** Returns the service, or null after recording why the Service is invalid. */
  public @Nullable MeshService service(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("Service", doc, docLabel);
    JsonNode spec = doc.path("spec");
    List<InetAddress> vips = clusterIps(spec);
    List<ServicePort> ports = servicePorts(spec.path("ports"));
    Map<String, String> selector = stringMap(spec.path("selector"), "spec.selector");
    if (id == null || errors.size() > before) {
      return null;
    }
    return new MeshService(id.name(), id.namespace(), vips, ports, selector);
  }

  /**
   * The API group and version of the mesh's own kinds (AuthorizationPolicy, PeerAuthentication).
   */
  public static final String SECURITY_API_VERSION = "security.nodemesh.dev/v1alpha1";

  private static final Set<String> SOURCE_FIELDS =
      Set.of(
          "principals", "notPrincipals", "namespaces", "notNamespaces", "ipBlocks", "notIpBlocks");
  private static final Set<String> OPERATION_FIELDS =
      Set.of("ports", "notPorts", "methods", "notMethods", "paths", "notPaths", "headers");
  private static final List<String> HTTP_METHODS =
      List.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH");
  private static final Set<String> RULE_FIELDS = Set.of("from", "to");

  /**
   * Returns the policy, or null after recording why it is invalid. Unknown fields inside rules are
   * errors, not ignored: a misspelt {@code principal} would otherwise widen a rule to everyone.
   */
  public @Nullable AuthorizationPolicy authorizationPolicy(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("AuthorizationPolicy", doc, docLabel);
    JsonNode spec = doc.path("spec");
    Map<String, String> selector = selector(spec);
    String actionText = text(spec, "action", "spec.action");
    AuthorizationPolicy.Action action = AuthorizationPolicy.Action.ALLOW;
    if (actionText != null) {
      switch (actionText) {
        case "ALLOW" -> action = AuthorizationPolicy.Action.ALLOW;
        case "DENY" -> action = AuthorizationPolicy.Action.DENY;
        default -> error("spec.action", quote(actionText) + " is not ALLOW or DENY");
      }
    }
    List<AuthorizationPolicy.Rule> rules = new ArrayList<>();
    JsonNode list = spec.path("rules");
    if (array(list, "spec.rules")) {
      for (int i = 0; i < list.size(); i++) {
        AuthorizationPolicy.Rule rule = rule(list.get(i), "spec.rules[" + i + "]");
        if (rule != null) {
          rules.add(rule);
        }
      }
    }
    if (id == null || errors.size() > before) {
      return null;
    }
    return new AuthorizationPolicy(id.name(), id.namespace(), selector, action, rules);
  }

  /** Returns the peer authentication, or null after recording why it is invalid. */
  public @Nullable PeerAuthentication peerAuthentication(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("PeerAuthentication", doc, docLabel);
    JsonNode spec = doc.path("spec");
    Map<String, String> selector = selector(spec);
    String modeText = text(spec.path("mtls"), "mode", "spec.mtls.mode");
    PeerAuthentication.Mode mode = null;
    if (modeText == null) {
      error("spec.mtls.mode", "is required (STRICT or PERMISSIVE)");
    } else {
      switch (modeText) {
        case "STRICT" -> mode = PeerAuthentication.Mode.STRICT;
        case "PERMISSIVE" -> mode = PeerAuthentication.Mode.PERMISSIVE;
        default -> error("spec.mtls.mode", quote(modeText) + " is not STRICT or PERMISSIVE");
      }
    }
    if (id == null || mode == null || errors.size() > before) {
      return null;
    }
    return new PeerAuthentication(id.name(), id.namespace(), selector, mode);
  }

  private Map<String, String> selector(JsonNode spec) {
    JsonNode sel = spec.path("selector");
    if (!sel.isMissingNode() && !sel.isNull() && !sel.isObject()) {
      error("spec.selector", "expected a mapping");
      return Map.of();
    }
    return stringMap(sel.path("matchLabels"), "spec.selector.matchLabels");
  }

  private AuthorizationPolicy.@Nullable Rule rule(JsonNode node, String path) {
    if (!fields(node, path, RULE_FIELDS, true)) {
      return null;
    }
    List<AuthorizationPolicy.Source> from = new ArrayList<>();
    JsonNode sources = node.path("from");
    if (array(sources, path + ".from")) {
      for (int i = 0; i < sources.size(); i++) {
        String spath = path + ".from[" + i + "]";
        JsonNode src = sources.get(i);
        if (fields(src, spath, SOURCE_FIELDS, false)) {
          from.add(
              new AuthorizationPolicy.Source(
                  patterns(src, "principals", spath, true),
                  patterns(src, "notPrincipals", spath, true),
                  patterns(src, "namespaces", spath, false),
                  patterns(src, "notNamespaces", spath, false),
                  cidrs(src, "ipBlocks", spath),
                  cidrs(src, "notIpBlocks", spath)));
        }
      }
    }
    List<AuthorizationPolicy.Operation> to = new ArrayList<>();
    JsonNode ops = node.path("to");
    if (array(ops, path + ".to")) {
      for (int i = 0; i < ops.size(); i++) {
        String opath = path + ".to[" + i + "]";
        JsonNode op = ops.get(i);
        if (fields(op, opath, OPERATION_FIELDS, false)) {
          to.add(
              new AuthorizationPolicy.Operation(
                  ports(op, "ports", opath),
                  ports(op, "notPorts", opath),
                  methods(op, "methods", opath),
                  methods(op, "notMethods", opath),
                  pathPatterns(op, "paths", opath),
                  pathPatterns(op, "notPaths", opath),
                  headerPatterns(op.path("headers"), opath + ".headers")));
        }
      }
    }
    return new AuthorizationPolicy.Rule(from, to);
  }

  /**
   * True when {@code node} is a mapping, so its known fields can be read; unknown keys are reported
   * (and the object is refused) but reading goes on, so every problem is found in one round. Unless
   * {@code mayBeEmpty} at least one key is required: an empty source would match everyone, almost
   * certainly not what was meant; an empty rule does mean "every connection", as in Istio.
   */
  private boolean fields(JsonNode node, String path, Set<String> allowed, boolean mayBeEmpty) {
    if (!node.isObject()) {
      error(path, "expected a mapping");
      return false;
    }
    for (Entry<String, JsonNode> e : node.properties()) {
      if (!allowed.contains(e.getKey())) {
        error(path + "." + e.getKey(), "unknown field (expected one of " + sorted(allowed) + ")");
      }
    }
    if (node.isEmpty() && !mayBeEmpty) {
      error(path, "is empty; name at least one of " + sorted(allowed));
    }
    return true;
  }

  private static String sorted(Set<String> names) {
    return String.join(", ", new java.util.TreeSet<>(names));
  }

  /**
   * Principal or namespace patterns: exact, {@code prefix*}, {@code *suffix} or {@code *}. An exact
   * principal must be a SPIFFE URI.
   */
  private List<String> patterns(JsonNode parent, String field, String path, boolean principal) {
    List<String> out = new ArrayList<>();
    JsonNode list = parent.path(field);
    if (!array(list, path + "." + field)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      String ipath = path + "." + field + "[" + i + "]";
      String value = scalar(list.get(i), ipath);
      if (value == null || value.isEmpty()) {
        error(ipath, "must not be empty");
        continue;
      }
      int star = value.indexOf('*');
      boolean wellFormed =
          star < 0
              || (value.indexOf('*', star + 1) < 0 && (star == 0 || star == value.length() - 1));
      if (!wellFormed) {
        error(ipath, quote(value) + ": '*' may only be the first or the last character, once");
      } else if (principal && star < 0 && !value.startsWith("spiffe://")) {
        error(ipath, quote(value) + " is not a spiffe:// URI (or a pattern with '*')");
      } else {
        out.add(value);
      }
    }
    return out;
  }

  private List<String> methods(JsonNode parent, String field, String path) {
    List<String> out = new ArrayList<>();
    JsonNode list = parent.path(field);
    if (!array(list, path + "." + field)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      String ipath = path + "." + field + "[" + i + "]";
      String m = scalar(list.get(i), ipath);
      if (m == null || !HTTP_METHODS.contains(m)) {
        error(ipath, quote(m) + " is not an HTTP method (upper case, e.g. GET)");
      } else {
        out.add(m);
      }
    }
    return out;
  }

  /** Request paths: exact, prefix*, *suffix or *; a non-pattern must start with '/'. */
  private List<String> pathPatterns(JsonNode parent, String field, String path) {
    List<String> out = patterns(parent, field, path, false);
    for (int i = 0; i < out.size(); i++) {
      String v = out.get(i);
      if (!v.startsWith("/") && !v.startsWith("*")) {
        error(path + "." + field + "[" + i + "]", quote(v) + " must start with \"/\" or '*'");
      }
    }
    return out;
  }

  /** {@code headers: {name: pattern}} of an operation; names lower-cased. */
  private Map<String, String> headerPatterns(JsonNode node, String path) {
    Map<String, String> out = new LinkedHashMap<>();
    if (node.isMissingNode() || node.isNull()) {
      return out;
    }
    if (!node.isObject()) {
      error(path, "expected a mapping of header name to value pattern");
      return out;
    }
    for (Entry<String, JsonNode> e : node.properties()) {
      String ipath = path + "." + e.getKey();
      String value = scalar(e.getValue(), ipath);
      if (!HEADER_NAME.matcher(e.getKey()).matches()) {
        error(ipath, quote(e.getKey()) + " is not a valid header name");
        continue;
      }
      if (value == null || value.isEmpty()) {
        error(ipath, "must not be empty (use \"*\" for any value)");
        continue;
      }
      int star = value.indexOf('*');
      if (star >= 0
          && (value.indexOf('*', star + 1) >= 0 || (star != 0 && star != value.length() - 1))) {
        error(ipath, quote(value) + ": '*' may only be the first or the last character, once");
        continue;
      }
      if (out.put(e.getKey().toLowerCase(java.util.Locale.ROOT), value) != null) {
        error(ipath, "listed twice (header names are case-insensitive)");
      }
    }
    return out;
  }

  /** The annotation that lets a route retry non-idempotent methods (a nodemesh extension). */
  public static final String RETRY_NON_IDEMPOTENT = "nodemesh.dev/retry-non-idempotent";

  private static final Pattern DURATION = Pattern.compile("([0-9]{1,5}(h|ms|m|s)){1,4}");
  private static final Pattern DURATION_PART = Pattern.compile("([0-9]{1,5})(h|ms|m|s)");
  private static final Pattern FAULT_DELAY = Pattern.compile("([0-9]{1,6}(h|ms|us|m|s)){1,5}");
  private static final Pattern FAULT_DELAY_PART = Pattern.compile("([0-9]{1,6})(h|ms|us|m|s)");
  private static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  /**
   * Returns the route, or null after recording why the HTTPRoute is invalid. A route none of whose
   * parentRefs is a Service (a route for a Gateway) is not ours: null without an error.
   */
  public @Nullable HttpRoute httpRoute(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("HTTPRoute", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    Map<String, String> annotations = stringMap(meta.path("annotations"), "metadata.annotations");
    String namespace = id == null ? "default" : id.namespace();
    JsonNode spec = doc.path("spec");
    List<HttpRoute.Parent> parents = parents(spec, namespace);
    List<HttpRoute.Rule> rules = new ArrayList<>();
    JsonNode ruleList = spec.path("rules");
    if (ruleList.isMissingNode() || ruleList.isNull()) {
      rules.add(
          new HttpRoute.Rule(
              List.of(HttpRoute.Match.everything()),
              List.of(),
              HttpRoute.HeaderModifier.NONE,
              HttpRoute.HeaderModifier.NONE,
              null,
              null,
              null,
              null));
    } else if (array(ruleList, "spec.rules")) {
      for (int i = 0; i < ruleList.size(); i++) {
        HttpRoute.Rule r = rule(ruleList.get(i), "spec.rules[" + i + "]", namespace);
        if (r != null) {
          rules.add(r);
        }
      }
    }
    long created = created(meta);
    if (id == null || errors.size() > before || parents.isEmpty()) {
      return null;
    }
    return new HttpRoute(
        id.name(),
        id.namespace(),
        parents,
        rules,
        "true".equals(annotations.get(RETRY_NON_IDEMPOTENT)),
        created);
  }

  /** The Service parentRefs of a route (GAMMA); other parents (Gateways) are skipped. */
  private List<HttpRoute.Parent> parents(JsonNode spec, String namespace) {
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
        if (name == null || name.isEmpty()) {
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

  private long created(JsonNode meta) {
    String ts = text(meta, "creationTimestamp", "metadata.creationTimestamp");
    if (ts != null) {
      try {
        return java.time.Instant.parse(ts).getEpochSecond();
      } catch (java.time.format.DateTimeParseException e) {
        error("metadata.creationTimestamp", quote(ts) + " is not an RFC 3339 time");
      }
    }
    return 0;
  }

  /**
   * Returns a Gateway API {@code GRPCRoute} attached to Services as an {@link HttpRoute} with
   * {@code grpc} set (its method matches become path matches, see {@link GrpcMatch}), or null after
   * recording why it is invalid. A route with no Service parent is not ours: null, no error.
   * Filters: request/response header modifiers, RequestMirror, ExtensionRef to an HTTPFault.
   */
  public @Nullable HttpRoute grpcRoute(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("GRPCRoute", doc, docLabel);
    JsonNode meta = doc.path("metadata");
    String namespace = id == null ? "default" : id.namespace();
    JsonNode spec = doc.path("spec");
    List<HttpRoute.Parent> parents = parents(spec, namespace);
    List<HttpRoute.Rule> rules = new ArrayList<>();
    JsonNode ruleList = spec.path("rules");
    if (ruleList.isMissingNode() || ruleList.isNull()) {
      error("spec.rules", "at least one rule is required");
    } else if (array(ruleList, "spec.rules")) {
      for (int i = 0; i < ruleList.size(); i++) {
        HttpRoute.Rule r = grpcRule(ruleList.get(i), "spec.rules[" + i + "]", namespace);
        if (r != null) {
          rules.add(r);
        }
      }
    }
    long created = created(meta);
    if (id == null || errors.size() > before || parents.isEmpty()) {
      return null;
    }
    return new HttpRoute(id.name(), id.namespace(), parents, rules, false, created, true);
  }

  private HttpRoute.@Nullable Rule grpcRule(JsonNode rule, String path, String namespace) {
    int before = errors.size();
    List<HttpRoute.Match> matches = new ArrayList<>();
    JsonNode list = rule.path("matches");
    if (array(list, path + ".matches")) {
      for (int i = 0; i < list.size(); i++) {
        String mpath = path + ".matches[" + i + "]";
        JsonNode m = list.get(i);
        TextMatch p = TextMatch.pathPrefix("/");
        JsonNode method = m.path("method");
        if (!method.isMissingNode() && !method.isNull()) {
          String type = text(method, "type", mpath + ".method.type");
          String service = text(method, "service", mpath + ".method.service");
          String name = text(method, "method", mpath + ".method.method");
          boolean regex = "RegularExpression".equals(type);
          if (type != null && !regex && !type.equals("Exact")) {
            error(mpath + ".method.type", quote(type) + " is not Exact or RegularExpression");
          } else if ((service == null || service.isEmpty()) && (name == null || name.isEmpty())) {
            error(mpath + ".method", "service or method is required");
          } else if (!regex
              && ((service != null && !GRPC_SERVICE.matcher(service).matches())
                  || (name != null && !GRPC_METHOD.matcher(name).matches()))) {
            error(
                mpath + ".method",
                "an Exact service is letters, digits, '_' and '.', a method has no '.' or '/'");
          } else {
            try {
              p = GrpcMatch.path(regex, service, name);
            } catch (java.util.regex.PatternSyntaxException e) {
              error(mpath + ".method", "not a valid regular expression: " + e.getDescription());
            }
          }
        }
        List<TextMatch> headers = nameValueMatches(m.path("headers"), mpath + ".headers", true);
        matches.add(new HttpRoute.Match(p, headers, List.of(), null));
      }
    }
    if (matches.isEmpty()) {
      matches.add(HttpRoute.Match.everything());
    }
    List<HttpRoute.Backend> backends = backends(rule, path, namespace);
    Filters fl = filters(rule.path("filters"), path + ".filters", namespace, matches, true);
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Rule(
        matches, backends, fl.request, fl.response, null, null, null, null, fl.fault, fl.mirror);
  }

  private static final Pattern GRPC_SERVICE =
      Pattern.compile("[A-Za-z_][A-Za-z_0-9]*(\\.[A-Za-z_][A-Za-z_0-9]*)*");
  private static final Pattern GRPC_METHOD = Pattern.compile("[A-Za-z_][A-Za-z_0-9]*");

  /**
   * Gateway API {@code ReferenceGrant} ({@code gateway.networking.k8s.io/v1beta1}); null after
   * recording why it is invalid. Entries for kinds the mesh does not use (a Gateway, a Secret) are
   * valid and kept; they just never match a route's backendRef.
   */
  public @Nullable ReferenceGrant referenceGrant(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("ReferenceGrant", doc, docLabel);
    JsonNode spec = doc.path("spec");
    List<ReferenceGrant.From> from = new ArrayList<>();
    List<ReferenceGrant.To> to = new ArrayList<>();
    if (fields(spec, "spec", Set.of("from", "to"), false)) {
      JsonNode list = spec.path("from");
      if (!array(list, "spec.from") || list.isEmpty()) {
        error("spec.from", "at least one entry is required");
      } else {
        for (int i = 0; i < list.size(); i++) {
          String path = "spec.from[" + i + "]";
          JsonNode f = list.get(i);
          if (fields(f, path, Set.of("group", "kind", "namespace"), false)) {
            String group = text(f, "group", path + ".group");
            String kind = requiredText(f, "kind", path + ".kind");
            String ns = requiredText(f, "namespace", path + ".namespace");
            if (group == null) {
              error(path + ".group", "is required (\"\" for the core group)");
            } else if (kind != null && ns != null) {
              from.add(new ReferenceGrant.From(group, kind, ns));
            }
          }
        }
      }
      list = spec.path("to");
      if (!array(list, "spec.to") || list.isEmpty()) {
        error("spec.to", "at least one entry is required");
      } else {
        for (int i = 0; i < list.size(); i++) {
          String path = "spec.to[" + i + "]";
          JsonNode t = list.get(i);
          if (fields(t, path, Set.of("group", "kind", "name"), false)) {
            String group = text(t, "group", path + ".group");
            String kind = requiredText(t, "kind", path + ".kind");
            String name = text(t, "name", path + ".name");
            if (group == null) {
              error(path + ".group", "is required (\"\" for the core group)");
            } else if (name != null && name.isEmpty()) {
              error(path + ".name", "must not be empty (leave it out for every object)");
            } else if (kind != null) {
              to.add(new ReferenceGrant.To(group, kind, name));
            }
          }
        }
      }
    }
    if (id == null || errors.size() > before) {
      return null;
    }
    return new ReferenceGrant(id.namespace(), id.name(), from, to);
  }

  private @Nullable String requiredText(JsonNode parent, String field, String path) {
    String s = text(parent, field, path);
    if (s == null || s.isEmpty()) {
      if (s != null || parent.path(field).isMissingNode() || parent.path(field).isNull()) {
        error(path, "is required");
      }
      return null;
    }
    return s;
  }

  /** {@code traffic.nodemesh.dev/v1alpha1 HTTPFault}; null after recording why it is invalid. */
  public @Nullable HttpFault httpFault(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("HTTPFault", doc, docLabel);
    JsonNode spec = doc.path("spec");
    fields(spec, "spec", Set.of("delay", "abort"), false);
    HttpFault.Delay delay = null;
    JsonNode d = spec.path("delay");
    if (!d.isMissingNode()
        && !d.isNull()
        && fields(d, "spec.delay", Set.of("fixedDelay", "percentage"), false)) {
      Duration fixed = faultDelay(d);
      int pm = percentage(d, "spec.delay.percentage");
      if (fixed == null) {
        error("spec.delay.fixedDelay", "is required and must be above 0");
      } else {
        delay = new HttpFault.Delay(fixed, pm);
      }
    }
    HttpFault.Abort abort = null;
    JsonNode a = spec.path("abort");
    if (!a.isMissingNode()
        && !a.isNull()
        && fields(a, "spec.abort", Set.of("httpStatus", "grpcStatus", "percentage"), false)) {
      int pm = percentage(a, "spec.abort.percentage");
      JsonNode http = a.path("httpStatus");
      JsonNode grpc = a.path("grpcStatus");
      boolean hasHttp = !http.isMissingNode() && !http.isNull();
      boolean hasGrpc = !grpc.isMissingNode() && !grpc.isNull();
      if (hasHttp == hasGrpc) {
        error("spec.abort", "exactly one of httpStatus and grpcStatus is required");
      } else if (hasHttp) {
        if (!http.isIntegralNumber() || http.intValue() < 200 || http.intValue() > 599) {
          error("spec.abort.httpStatus", quote(http.asText()) + " is not an integer in 200-599");
        } else {
          abort = new HttpFault.Abort(http.intValue(), null, pm);
        }
      } else {
        Integer code = grpcStatus(grpc);
        if (code == null) {
          error(
              "spec.abort.grpcStatus",
              quote(grpc.asText()) + " is not a gRPC status code 1-16 or its name (UNAVAILABLE)");
        } else {
          abort = new HttpFault.Abort(200, code, pm);
        }
      }
    }
    if (delay == null && abort == null && errors.size() == before) {
      error("spec", "delay or abort is required");
    }
    if (id == null || errors.size() > before) {
      return null;
    }
    return new HttpFault(id.name(), id.namespace(), delay, abort);
  }

  /** gRPC status names, index = code. OK (0) cannot be injected. */
  public static final List<String> GRPC_STATUS_NAMES =
      List.of(
          "OK",
          "CANCELLED",
          "UNKNOWN",
          "INVALID_ARGUMENT",
          "DEADLINE_EXCEEDED",
          "NOT_FOUND",
          "ALREADY_EXISTS",
          "PERMISSION_DENIED",
          "RESOURCE_EXHAUSTED",
          "FAILED_PRECONDITION",
          "ABORTED",
          "OUT_OF_RANGE",
          "UNIMPLEMENTED",
          "INTERNAL",
          "UNAVAILABLE",
          "DATA_LOSS",
          "UNAUTHENTICATED");

  private static @Nullable Integer grpcStatus(JsonNode n) {
    if (n.isIntegralNumber()) {
      return n.intValue() >= 1 && n.intValue() <= 16 ? n.intValue() : null;
    }
    int i = GRPC_STATUS_NAMES.indexOf(n.asText());
    return i >= 1 ? i : null;
  }

  /** A percentage 0-100 (up to 4 decimals), default 100, as parts per million. */
  private int percentage(JsonNode parent, String path) {
    JsonNode p = parent.path("percentage");
    if (p.isMissingNode() || p.isNull()) {
      return HttpFault.MILLION;
    }
    if (!p.isNumber() || p.doubleValue() < 0 || p.doubleValue() > 100) {
      error(path, quote(p.asText()) + " is not a number in 0-100");
      return 0;
    }
    return (int) Math.round(p.doubleValue() * 10_000);
  }

  private HttpRoute.@Nullable Rule rule(JsonNode rule, String path, String namespace) {
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
        fl.mirror);
  }

  private List<HttpRoute.Backend> backends(JsonNode rule, String path, String namespace) {
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
        if (name == null || name.isEmpty()) {
          error(bpath + ".name", "is required");
        } else if (port != null) {
          backends.add(
              new HttpRoute.Backend(
                  new NamespacedName(ns == null ? namespace : ns, name), port, weight));
        }
      }
    }
    return backends;
  }

  /** What a rule's filters say; every field optional. */
  private static final class Filters {
    HttpRoute.HeaderModifier request = HttpRoute.HeaderModifier.NONE;
    HttpRoute.HeaderModifier response = HttpRoute.HeaderModifier.NONE;
    HttpRoute.@Nullable Rewrite rewrite;
    @Nullable NamespacedName fault;
    HttpRoute.@Nullable Mirror mirror;
  }

  /**
   * A rule's filters: header modifiers, URLRewrite (HTTPRoute only), RequestMirror, and an
   * ExtensionRef to an {@code HTTPFault} in the route's namespace. Each type at most once.
   */
  private Filters filters(
      JsonNode filters,
      String path,
      String namespace,
      List<HttpRoute.Match> matches,
      boolean grpc) {
    Filters out = new Filters();
    if (!array(filters, path)) {
      return out;
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
        error(fpath + ".type", quote(type) + " is given twice in one rule");
        continue;
      }
      switch (type) {
        case "RequestHeaderModifier" ->
            out.request =
                headerModifier(f.path("requestHeaderModifier"), fpath + ".requestHeaderModifier");
        case "ResponseHeaderModifier" ->
            out.response =
                headerModifier(f.path("responseHeaderModifier"), fpath + ".responseHeaderModifier");
        case "URLRewrite" -> {
          if (grpc) {
            error(fpath + ".type", "URLRewrite is not a GRPCRoute filter");
          } else {
            out.rewrite = rewrite(f.path("urlRewrite"), fpath + ".urlRewrite", matches);
          }
        }
        case "RequestMirror" ->
            out.mirror = mirror(f.path("requestMirror"), fpath + ".requestMirror", namespace);
        case "ExtensionRef" -> out.fault = extensionRef(f.path("extensionRef"), fpath, namespace);
        default -> error(fpath + ".type", quote(type) + " is not supported (yet)");
      }
    }
    return out;
  }

  /** The API group of the mesh's traffic kinds (HTTPFault). */
  public static final String TRAFFIC_GROUP = "traffic.nodemesh.dev";

  private @Nullable NamespacedName extensionRef(JsonNode ref, String fpath, String namespace) {
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

  private HttpRoute.@Nullable Mirror mirror(JsonNode m, String path, String namespace) {
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

  private HttpRoute.@Nullable Match match(JsonNode m, String path) {
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
    if (method != null
        && !List.of("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH")
            .contains(method)) {
      error(path + ".method", quote(method) + " is not an HTTP method Gateway API allows");
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Match(pathMatch, headers, query, method);
  }

  private List<TextMatch> nameValueMatches(JsonNode list, String path, boolean header) {
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

  private List<Cidr> cidrs(JsonNode parent, String field, String path) {
    List<Cidr> out = new ArrayList<>();
    JsonNode list = parent.path(field);
    if (!array(list, path + "." + field)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      String ipath = path + "." + field + "[" + i + "]";
      String value = scalar(list.get(i), ipath);
      Cidr cidr = value == null ? null : Cidr.parse(value);
      if (cidr == null) {
        error(ipath, quote(value) + " is not an IP address or CIDR block");
      } else {
        out.add(cidr);
      }
    }
    return out;
  }

  private List<Integer> ports(JsonNode parent, String field, String path) {
    List<Integer> out = new ArrayList<>();
    JsonNode list = parent.path(field);
    if (!array(list, path + "." + field)) {
      return out;
    }
    for (int i = 0; i < list.size(); i++) {
      JsonNode item = list.get(i);
      String ipath = path + "." + field + "[" + i + "]";
      // Istio writes ports as strings ("8080"); accept both, so a copied policy works.
      Integer port =
          item.isTextual() && PORT_DIGITS.matcher(item.asText()).matches()
              ? portValue(IntNode.valueOf(Integer.parseInt(item.asText())), ipath)
              : portValue(item, ipath);
      if (port != null) {
        out.add(port);
      }
    }
    return out;
  }

  private @Nullable TextMatch textMatch(
      TextMatch.Kind kind, String name, String value, String path) {
    try {
      return new TextMatch(kind, name, value);
    } catch (java.util.regex.PatternSyntaxException e) {
      error(path, quote(value) + " is not a valid regular expression: " + e.getDescription());
      return null;
    }
  }

  private HttpRoute.HeaderModifier headerModifier(JsonNode m, String path) {
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

  private Map<String, String> headerList(JsonNode list, String path) {
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

  private HttpRoute.@Nullable Rewrite rewrite(
      JsonNode r, String path, List<HttpRoute.Match> matches) {
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

  /** A Gateway API duration ("10s", "1m30s", "250ms"); null when absent or "0s" (no limit). */
  /**
   * HTTPFault's {@code fixedDelay}: a Gateway API duration that may also have a microseconds part
   * ({@code 500us}, {@code 1ms250us}), since an injected delay below a millisecond is useful for
   * latency-sensitive services and the field is nodemesh's own.
   */
  private @Nullable Duration faultDelay(JsonNode parent) {
    return duration(
        parent,
        "fixedDelay",
        "spec.delay.fixedDelay",
        FAULT_DELAY,
        FAULT_DELAY_PART,
        " is not a duration (e.g. 10s, 250ms, 1ms500us)");
  }

  private @Nullable Duration duration(JsonNode parent, String field, String path) {
    return duration(
        parent,
        field,
        path,
        DURATION,
        DURATION_PART,
        " is not a Gateway API duration (e.g. 10s, 1m30s, 250ms)");
  }

  /** {@code whole} validates the text; {@code part} finds each number and unit (h m s ms us). */
  private @Nullable Duration duration(
      JsonNode parent, String field, String path, Pattern whole, Pattern part, String notOne) {
    String text = text(parent, field, path);
    if (text == null) {
      return null;
    }
    if (!whole.matcher(text).matches()) {
      error(path, quote(text) + notOne);
      return null;
    }
    Duration d = Duration.ZERO;
    java.util.regex.Matcher m = part.matcher(text);
    while (m.find()) {
      long n = Long.parseLong(m.group(1));
      d =
          d.plus(
              switch (m.group(2)) {
                case "h" -> Duration.ofHours(n);
                case "m" -> Duration.ofMinutes(n);
                case "s" -> Duration.ofSeconds(n);
                case "ms" -> Duration.ofMillis(n);
                case "us" -> Duration.ofNanos(n * 1000);
                default -> throw new IllegalStateException("unit " + m.group(2));
              });
    }
    return d.isZero() ? null : d;
  }

  /** Reads name and namespace and sets {@link #where}; null when the name is missing. */
  private @Nullable NamespacedName identify(String kind, JsonNode doc, String docLabel) {
    where = file + ": " + kind + " in " + docLabel;
    JsonNode meta = doc.path("metadata");
    String name = text(meta, "name", "metadata.name");
    String namespace = text(meta, "namespace", "metadata.namespace");
    NamespacedName id =
        name == null || name.isEmpty()
            ? null
            : new NamespacedName(namespace == null ? "default" : namespace, name);
    if (id == null) {
      error("metadata.name", "is required");
    } else {
      where = file + ": " + kind + " " + id;
    }
    return id;
  }

  private List<InetAddress> podIps(JsonNode status) {
    int before = errors.size();
    List<InetAddress> ips = new ArrayList<>();
    JsonNode list = status.path("podIPs");
    if (array(list, "status.podIPs")) {
      for (int i = 0; i < list.size(); i++) {
        String path = "status.podIPs[" + i + "].ip";
        String text = text(list.get(i), "ip", path);
        if (text == null) {
          error(path, "is required");
        }
        InetAddress ip = ip(text, path);
        if (ip != null) {
          ips.add(ip);
        }
      }
    }
    String single = text(status, "podIP", "status.podIP");
    InetAddress podIp = ip(single, "status.podIP");
    if (podIp != null) {
      if (ips.isEmpty()) {
        ips.add(podIp);
      } else if (!ips.get(0).equals(podIp)) {
        // Kubernetes keeps podIP == podIPs[0]; a mismatch means a hand edit went half-way.
        error("status.podIP", quote(single) + " differs from status.podIPs[0]");
      }
    }
    if (ips.isEmpty() && errors.size() == before) {
      error("status.podIP", "is required (or status.podIPs)");
    }
    return ips;
  }

  private Map<String, Integer> namedPorts(JsonNode spec) {
    Map<String, Integer> named = new HashMap<>();
    JsonNode containers = spec.path("containers");
    if (!array(containers, "spec.containers")) {
      return named;
    }
    for (int c = 0; c < containers.size(); c++) {
      String cpath = "spec.containers[" + c + "].ports";
      JsonNode ports = containers.get(c).path("ports");
      if (!array(ports, cpath)) {
        continue;
      }
      for (int p = 0; p < ports.size(); p++) {
        String ppath = cpath + "[" + p + "]";
        JsonNode port = ports.get(p);
        Integer number = port(port, "containerPort", ppath + ".containerPort", true);
        String name = text(port, "name", ppath + ".name");
        String protocol = text(port, "protocol", ppath + ".protocol");
        // Non-TCP container ports are legal on a pod (e.g. DNS); they just never match a
        // Service port here, since only TCP Services are supported.
        if (name == null || number == null || !(protocol == null || protocol.equals("TCP"))) {
          continue;
        }
        if (checkPortName(name, ppath + ".name") && named.put(name, number) != null) {
          error(ppath + ".name", quote(name) + " is declared twice in this pod");
        }
      }
    }
    return named;
  }

  private List<InetAddress> clusterIps(JsonNode spec) {
    List<String> raw = new ArrayList<>();
    List<String> paths = new ArrayList<>();
    JsonNode list = spec.path("clusterIPs");
    if (!list.isMissingNode() && array(list, "spec.clusterIPs")) {
      for (int i = 0; i < list.size(); i++) {
        String path = "spec.clusterIPs[" + i + "]";
        String value = scalar(list.get(i), path);
        if (value != null) {
          raw.add(value);
          paths.add(path);
        }
      }
    }
    String single = text(spec, "clusterIP", "spec.clusterIP");
    if (single != null) {
      if (raw.isEmpty()) {
        raw.add(single);
        paths.add("spec.clusterIP");
      } else if (!raw.get(0).equals(single)) {
        error("spec.clusterIP", quote(single) + " differs from spec.clusterIPs[0]");
      }
    }
    List<InetAddress> vips = new ArrayList<>();
    for (int i = 0; i < raw.size(); i++) {
      if (raw.get(i).equals("None")) {
        if (raw.size() > 1) {
          error(paths.get(i), "\"None\" (headless) cannot be combined with other cluster IPs");
        }
        continue;
      }
      InetAddress vip = ip(raw.get(i), paths.get(i));
      if (vip != null) {
        vips.add(vip);
      }
    }
    return vips;
  }

  private List<ServicePort> servicePorts(JsonNode list) {
    List<ServicePort> ports = new ArrayList<>();
    if (!array(list, "spec.ports")) {
      return ports;
    }
    Map<Integer, String> seenNumbers = new HashMap<>();
    Map<String, String> seenNames = new HashMap<>();
    for (int i = 0; i < list.size(); i++) {
      String path = "spec.ports[" + i + "]";
      JsonNode node = list.get(i);
      String protocol = text(node, "protocol", path + ".protocol");
      if (protocol != null && !protocol.equals("TCP")) {
        // The mesh carries TCP; UDP and SCTP ports (kube-dns has UDP 53 beside TCP 53) are left
        // to the cluster's own networking rather than making the whole Service invalid.
        if (!protocol.equals("UDP") && !protocol.equals("SCTP")) {
          error(path + ".protocol", quote(protocol) + " is not TCP, UDP or SCTP");
        }
        continue;
      }
      String name = text(node, "name", path + ".name");
      Integer port = port(node, "port", path + ".port", true);
      String appProtocol = text(node, "appProtocol", path + ".appProtocol");
      JsonNode target = node.path("targetPort");
      Integer targetNumber = null;
      String targetName = null;
      if (target.isTextual()) {
        targetName = target.asText();
        checkPortName(targetName, path + ".targetPort");
      } else if (!target.isMissingNode() && !target.isNull()) {
        targetNumber = port(node, "targetPort", path + ".targetPort", false);
      } else {
        targetNumber = port; // Kubernetes defaults targetPort to port.
      }
      if (port != null) {
        String earlier = seenNumbers.putIfAbsent(port, path);
        if (earlier != null) {
          error(path + ".port", port + " is already used by " + earlier);
        }
      }
      if (name != null && !name.isEmpty()) {
        String earlier = seenNames.putIfAbsent(name, path);
        if (earlier != null) {
          error(path + ".name", quote(name) + " is already used by " + earlier);
        }
      }
      if (port != null && (targetNumber != null || targetName != null)) {
        ports.add(
            new ServicePort(
                name == null ? "" : name,
                port,
                targetNumber == null ? 0 : targetNumber,
                targetName,
                appProtocol == null ? "tcp" : appProtocol));
      }
    }
    return ports;
  }

  private Map<String, String> stringMap(JsonNode node, String path) {
    Map<String, String> map = new LinkedHashMap<>();
    if (node.isMissingNode() || node.isNull()) {
      return map;
    }
    if (!node.isObject()) {
      error(path, "expected a mapping of strings");
      return map;
    }
    for (Entry<String, JsonNode> e : node.properties()) {
      String value = scalar(e.getValue(), path + "." + e.getKey());
      if (value != null) {
        map.put(e.getKey(), value);
      }
    }
    return map;
  }

  /** A port number field: must be an integer in 1-65535; null (after an error) otherwise. */
  private @Nullable Integer port(JsonNode parent, String field, String path, boolean required) {
    JsonNode node = parent.path(field);
    if (node.isMissingNode() || node.isNull()) {
      if (required) {
        error(path, "is required");
      }
      return null;
    }
    return portValue(node, path);
  }

  private @Nullable Integer portValue(JsonNode node, String path) {
    if (!node.isIntegralNumber()) {
      error(path, quote(node.asText()) + " is not an integer");
      return null;
    }
    if (!node.canConvertToInt() || node.intValue() < 1 || node.intValue() > 65535) {
      error(path, node.asText() + " is out of range 1-65535");
      return null;
    }
    return node.intValue();
  }

  private boolean checkPortName(String name, String path) {
    if (!PORT_NAME.matcher(name).matches() || name.chars().noneMatch(Character::isLetter)) {
      error(path, quote(name) + " is not a valid port name (1-15 of a-z, 0-9, '-'; one letter)");
      return false;
    }
    return true;
  }

  /** The field as a string; null if absent or (after an error) not a scalar. */
  private @Nullable String text(JsonNode parent, String field, String path) {
    return scalar(parent.path(field), path);
  }

  private @Nullable String scalar(JsonNode node, String path) {
    if (node.isMissingNode() || node.isNull()) {
      return null;
    }
    if (!node.isValueNode()) {
      error(path, "expected a string, found a " + (node.isArray() ? "list" : "mapping"));
      return null;
    }
    return node.asText();
  }

  /** True when the node is a list; absent counts as an empty list; anything else is an error. */
  private boolean array(JsonNode node, String path) {
    if (node.isMissingNode() || node.isNull()) {
      return false;
    }
    if (!node.isArray()) {
      error(path, "expected a list");
      return false;
    }
    return true;
  }

  /**
   * Parses an IP literal without ever resolving a name: {@code InetAddress.getByName} would do a
   * DNS lookup for "10.0.0.x", and Java 17 has no {@code InetAddress.ofLiteral}.
   */
  private @Nullable InetAddress ip(@Nullable String text, String path) {
    if (text == null) {
      return null;
    }
    InetAddress ip = NetUtil.createInetAddressFromIpAddressString(text);
    if (ip == null) {
      error(path, quote(text) + " is not an IP address");
    }
    return ip;
  }

  private void error(String path, String problem) {
    errors.add(where + ": " + path + ": " + problem);
  }

  private static String quote(@Nullable String s) {
    return "\"" + s + "\"";
  }
}
