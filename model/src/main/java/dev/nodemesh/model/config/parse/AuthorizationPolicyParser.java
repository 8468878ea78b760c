package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.NamespacedName;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Map.Entry;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * Reads the mesh's {@code security.nodemesh.dev/v1alpha1 AuthorizationPolicy}: selector, action and
 * rules (sources by principal, namespace and CIDR; operations by method, path, port and header).
 * Unknown fields in a rule are refused, so a typo cannot widen a policy.
 */
public final class AuthorizationPolicyParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public AuthorizationPolicyParser(String file, List<String> errors) {
    super(file, errors);
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

  private static final Set<String> RULE_FIELDS = Set.of("from", "to");

  /**
   * Returns the policy, or null after recording why it is invalid. Unknown fields inside rules are
   * errors, not ignored: a misspelt {@code principal} would otherwise widen a rule to everyone.
   */
  public @Nullable AuthorizationPolicy parse(JsonNode doc, String docLabel) {
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
      if (m == null || !FieldRules.isHttpMethod(m)) {
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
}
