package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.IntNode;
import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TextMatch;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Map.Entry;
import java.util.Set;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * The field readers every kind's YAML parser shares: scalars, lists, maps, ports, IPs, CIDRs,
 * durations, selectors, object identity, and the error recording that prefixes each problem with
 * {@code <file>: <Kind> <ns>/<name>: <field path>}. It walks the raw tree instead of binding to
 * fabric8's model classes because binding loses the field path of a type error and silently accepts
 * values (bad IPs, port 70000) we must reject.
 *
 * <p>Public, with protected members, so a kind file in {@code model.kind} can hold its own parser
 * as a subclass (the existing kinds' parsers live here, beside this class).
 *
 * <p>Limits: one instance parses objects one after another (it remembers where the current object
 * is for messages); not thread-safe. A base class rather than a helper object so the per-kind
 * parsers read like the single parser they were split from.
 */
public abstract class YamlFields {
  /** Kubernetes' IANA_SVC_NAME: what a named port may look like. */
  protected static final Pattern PORT_DIGITS = Pattern.compile("[0-9]{1,5}");

  protected final List<String> errors;

  protected final String file;

  /** Where the object being parsed is, for messages: "pods.yaml: Pod default/client". */
  protected String where = "";

  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  protected YamlFields(String file, List<String> errors) {
    this.file = file;
    this.errors = errors;
  }

  protected Map<String, String> selector(JsonNode spec) {
    JsonNode sel = spec.path("selector");
    if (!sel.isMissingNode() && !sel.isNull() && !sel.isObject()) {
      error("spec.selector", "expected a mapping");
      return Map.of();
    }
    return stringMap(sel.path("matchLabels"), "spec.selector.matchLabels");
  }

  /**
   * True when {@code node} is a mapping, so its known fields can be read; unknown keys are reported
   * (and the object is refused) but reading goes on, so every problem is found in one round. Unless
   * {@code mayBeEmpty} at least one key is required: an empty source would match everyone, almost
   * certainly not what was meant; an empty rule does mean "every connection", as in Istio.
   */
  protected boolean fields(JsonNode node, String path, Set<String> allowed, boolean mayBeEmpty) {
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

  protected static String sorted(Set<String> names) {
    return String.join(", ", new java.util.TreeSet<>(names));
  }

  protected static final Pattern DURATION = Pattern.compile("([0-9]{1,5}(h|ms|m|s)){1,4}");

  protected static final Pattern DURATION_PART = Pattern.compile("([0-9]{1,5})(h|ms|m|s)");

  protected static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  protected long created(JsonNode meta) {
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

  protected @Nullable String requiredText(JsonNode parent, String field, String path) {
    String s = text(parent, field, path);
    if (s == null || s.isEmpty()) {
      if (s != null || parent.path(field).isMissingNode() || parent.path(field).isNull()) {
        error(path, "is required");
      }
      return null;
    }
    return s;
  }

  protected List<Cidr> cidrs(JsonNode parent, String field, String path) {
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

  protected List<Integer> ports(JsonNode parent, String field, String path) {
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

  protected @Nullable TextMatch textMatch(
      TextMatch.Kind kind, String name, String value, String path) {
    try {
      return new TextMatch(kind, name, value);
    } catch (java.util.regex.PatternSyntaxException e) {
      error(path, quote(value) + " is not a valid regular expression: " + e.getDescription());
      return null;
    }
  }

  protected @Nullable Duration duration(JsonNode parent, String field, String path) {
    return duration(
        parent,
        field,
        path,
        DURATION,
        DURATION_PART,
        " is not a Gateway API duration (e.g. 10s, 1m30s, 250ms)");
  }

  /** {@code whole} validates the text; {@code part} finds each number and unit (h m s ms us). */
  protected @Nullable Duration duration(
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
  protected @Nullable NamespacedName identify(String kind, JsonNode doc, String docLabel) {
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

  protected Map<String, String> stringMap(JsonNode node, String path) {
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
  protected @Nullable Integer port(JsonNode parent, String field, String path, boolean required) {
    JsonNode node = parent.path(field);
    if (node.isMissingNode() || node.isNull()) {
      if (required) {
        error(path, "is required");
      }
      return null;
    }
    return portValue(node, path);
  }

  protected @Nullable Integer portValue(JsonNode node, String path) {
    if (!node.isIntegralNumber()) {
      error(path, quote(node.asText()) + " is not an integer");
      return null;
    }
    if (!node.canConvertToInt() || !FieldRules.isPort(node.intValue())) {
      error(path, node.asText() + " is out of range 1-65535");
      return null;
    }
    return node.intValue();
  }

  protected boolean checkPortName(String name, String path) {
    if (!FieldRules.isPortName(name)) {
      error(path, quote(name) + " is not a valid port name (1-15 of a-z, 0-9, '-'; one letter)");
      return false;
    }
    return true;
  }

  /** The field as a string; null if absent or (after an error) not a scalar. */
  protected @Nullable String text(JsonNode parent, String field, String path) {
    return scalar(parent.path(field), path);
  }

  protected @Nullable String scalar(JsonNode node, String path) {
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
  protected boolean array(JsonNode node, String path) {
    if (node.isMissingNode() || node.isNull()) {
      return false;
    }
    if (!node.isArray()) {
      error(path, "expected a list");
      return false;
    }
    return true;
  }

  /** An IP literal (never resolved as a name); null (after an error) otherwise. */
  protected @Nullable InetAddress ip(@Nullable String text, String path) {
    if (text == null) {
      return null;
    }
    InetAddress ip = FieldRules.ipLiteral(text);
    if (ip == null) {
      error(path, quote(text) + " is not an IP address");
    }
    return ip;
  }

  protected void error(String path, String problem) {
    errors.add(where + ": " + path + ": " + problem);
  }

  protected static String quote(@Nullable String s) {
    return "\"" + s + "\"";
  }
}
