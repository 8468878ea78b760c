package dev.nodemesh.model.config;

import com.fasterxml.jackson.databind.JsonNode;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Reads a {@code traffic.nodemesh.dev/v1alpha1} {@code TrafficPolicy} from its Kubernetes form (a
 * YAML document or a custom resource), checking every field: unknown fields, wrong types and out of
 * range values are errors ({@code file: TrafficPolicy ns/name: spec.field: reason}), and a policy
 * with any is refused whole. Kept apart from {@code parse.ResourceParser} so the kinds grow
 * separately.
 */
public final class TrafficPolicyParser {
  private static final Pattern DURATION = Pattern.compile("([0-9]{1,6}(h|ms|m|s)){1,4}");
  private static final Pattern DURATION_PART = Pattern.compile("([0-9]{1,6})(h|ms|m|s)");
  private static final Pattern HEADER_NAME = Pattern.compile("[A-Za-z0-9!#$%&'*+.^_`|~-]+");

  private static final Set<String> SPEC =
      Set.of(
          "targetRef",
          "loadBalancer",
          "circuitBreaker",
          "outlierDetection",
          "retry",
          "rateLimit",
          "tcpIdleTimeout");
  private static final Set<String> TARGET = Set.of("group", "kind", "name");
  private static final Set<String> LB = Set.of("algorithm", "hash", "localityPreference");
  private static final Set<String> HASH = Set.of("header", "sourceIP");
  private static final Set<String> CB =
      Set.of("maxConnections", "maxPendingRequests", "maxRequests");
  private static final Set<String> OD =
      Set.of(
          "consecutive5xx",
          "consecutiveGatewayErrors",
          "consecutiveConnectFailures",
          "baseEjectionTime",
          "maxEjectionTime",
          "maxEjectionPercent");
  private static final Set<String> RETRY =
      Set.of("budgetPercent", "minRetryConcurrency", "backoff", "retryNonIdempotent");
  private static final Set<String> BACKOFF = Set.of("base", "max");
  private static final Set<String> RL =
      Set.of("maxTokens", "tokensPerFill", "fillInterval", "perSource", "maxSources");

  /** Upper bound of {@code rateLimit.maxSources}: the per-source map must stay small. */
  public static final int MAX_SOURCES_LIMIT = 65_536;

  private final String file;
  private final List<String> errors;
  private String where = "";

  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public TrafficPolicyParser(String file, List<String> errors) {
    this.file = file;
    this.errors = errors;
  }

  /** Returns the policy, or null after recording every reason it is invalid. */
  public @Nullable TrafficPolicy parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    where = file + ": TrafficPolicy in " + docLabel;
    JsonNode meta = doc.path("metadata");
    String name = text(meta, "name", "metadata.name");
    String namespace = text(meta, "namespace", "metadata.namespace");
    if (name == null || name.isEmpty()) {
      error("metadata.name", "is required");
    } else {
      where = file + ": TrafficPolicy " + (namespace == null ? "default" : namespace) + "/" + name;
    }
    JsonNode spec = doc.path("spec");
    if (!spec.isObject()) {
      error("spec", "is required (a mapping with targetRef)");
      return null;
    }
    fields(spec, "spec", SPEC);
    String service = null;
    JsonNode ref = spec.path("targetRef");
    if (ref.isMissingNode() || ref.isNull()) {
      error("spec.targetRef", "is required (the Service this policy applies to)");
    } else if (fields(ref, "spec.targetRef", TARGET)) {
      String group = text(ref, "group", "spec.targetRef.group");
      String kind = text(ref, "kind", "spec.targetRef.kind");
      if (group != null && !group.isEmpty() && !group.equals("core")) {
        error("spec.targetRef.group", quote(group) + " is not the core group (\"\")");
      }
      if (kind != null && !kind.equals("Service")) {
        error("spec.targetRef.kind", quote(kind) + " is not Service");
      }
      service = text(ref, "name", "spec.targetRef.name");
      if (service == null || service.isEmpty()) {
        error("spec.targetRef.name", "is required");
      }
    }
    TrafficPolicy.LoadBalancer lb = loadBalancer(spec.path("loadBalancer"));
    TrafficPolicy.CircuitBreaker cb = circuitBreaker(spec.path("circuitBreaker"));
    TrafficPolicy.OutlierDetection od = outlierDetection(spec.path("outlierDetection"));
    TrafficPolicy.Retry retry = retry(spec.path("retry"));
    TrafficPolicy.RateLimit rl = rateLimit(spec.path("rateLimit"));
    Duration tcpIdle = tcpIdleTimeout(spec);
    if (errors.size() > before || name == null || service == null) {
      return null;
    }
    return new TrafficPolicy(
        name, namespace == null ? "default" : namespace, service, lb, cb, od, retry, rl, tcpIdle);
  }

  private TrafficPolicy.LoadBalancer loadBalancer(JsonNode n) {
    TrafficPolicy.LoadBalancer d = TrafficPolicy.LoadBalancer.DEFAULT;
    if (absent(n) || !fields(n, "spec.loadBalancer", LB)) {
      return d;
    }
    TrafficPolicy.Algorithm algorithm = d.algorithm();
    String a = text(n, "algorithm", "spec.loadBalancer.algorithm");
    if (a != null) {
      try {
        algorithm = TrafficPolicy.Algorithm.valueOf(a);
      } catch (IllegalArgumentException e) {
        error(
            "spec.loadBalancer.algorithm",
            quote(a) + " is not one of " + List.of(TrafficPolicy.Algorithm.values()));
      }
    }
    String header = null;
    boolean sourceIp = false;
    JsonNode hash = n.path("hash");
    if (!absent(hash)) {
      if (algorithm != TrafficPolicy.Algorithm.RING_HASH) {
        error("spec.loadBalancer.hash", "is only for algorithm RING_HASH");
      }
      if (fields(hash, "spec.loadBalancer.hash", HASH)) {
        header = text(hash, "header", "spec.loadBalancer.hash.header");
        if (header != null && !HEADER_NAME.matcher(header).matches()) {
          error("spec.loadBalancer.hash.header", quote(header) + " is not a valid header name");
        }
        Boolean ip = bool(hash, "sourceIP", "spec.loadBalancer.hash.sourceIP");
        sourceIp = ip != null && ip;
        if (header != null && sourceIp) {
          error("spec.loadBalancer.hash", "give header or sourceIP, not both");
        }
        if (header == null && ip == null) {
          error("spec.loadBalancer.hash", "is empty; name header or sourceIP");
        }
      }
    }
    Boolean locality = bool(n, "localityPreference", "spec.loadBalancer.localityPreference");
    return new TrafficPolicy.LoadBalancer(
        algorithm,
        header == null ? null : header.toLowerCase(Locale.ROOT),
        sourceIp,
        locality == null || locality);
  }

  private TrafficPolicy.@Nullable CircuitBreaker circuitBreaker(JsonNode n) {
    if (absent(n) || !fields(n, "spec.circuitBreaker", CB)) {
      return null;
    }
    int unlimited = TrafficPolicy.CircuitBreaker.UNLIMITED;
    return new TrafficPolicy.CircuitBreaker(
        integer(n, "maxConnections", "spec.circuitBreaker", 1, unlimited, unlimited),
        integer(n, "maxPendingRequests", "spec.circuitBreaker", 1, unlimited, unlimited),
        integer(n, "maxRequests", "spec.circuitBreaker", 1, unlimited, unlimited));
  }

  private TrafficPolicy.@Nullable OutlierDetection outlierDetection(JsonNode n) {
    if (absent(n) || !fields(n, "spec.outlierDetection", OD)) {
      return null;
    }
    String p = "spec.outlierDetection";
    int c5 = integer(n, "consecutive5xx", p, 0, 1_000_000, 5);
    int gw = integer(n, "consecutiveGatewayErrors", p, 0, 1_000_000, 0);
    int cf = integer(n, "consecutiveConnectFailures", p, 0, 1_000_000, 5);
    Duration base =
        duration(n, "baseEjectionTime", p + ".baseEjectionTime", Duration.ofSeconds(30));
    Duration max = duration(n, "maxEjectionTime", p + ".maxEjectionTime", Duration.ofMinutes(5));
    int pct = integer(n, "maxEjectionPercent", p, 0, 100, 10);
    if (c5 == 0 && gw == 0 && cf == 0) {
      error(p, "every consecutive* counter is 0: nothing would ever be ejected");
    }
    if (max.compareTo(base) < 0) {
      error(p + ".maxEjectionTime", "is shorter than baseEjectionTime");
    }
    return new TrafficPolicy.OutlierDetection(c5, gw, cf, base, max, pct);
  }

  private TrafficPolicy.Retry retry(JsonNode n) {
    TrafficPolicy.Retry d = TrafficPolicy.Retry.DEFAULT;
    if (absent(n) || !fields(n, "spec.retry", RETRY)) {
      return d;
    }
    String p = "spec.retry";
    int pct = integer(n, "budgetPercent", p, 0, 100, d.budgetPercent());
    int min = integer(n, "minRetryConcurrency", p, 0, 1_000_000, d.minRetryConcurrency());
    Duration base = d.backoffBase();
    Duration max = d.backoffMax();
    JsonNode b = n.path("backoff");
    if (!absent(b) && fields(b, p + ".backoff", BACKOFF)) {
      base = duration(b, "base", p + ".backoff.base", base);
      max = duration(b, "max", p + ".backoff.max", max.compareTo(base) < 0 ? base : max);
      if (max.compareTo(base) < 0) {
        error(p + ".backoff.max", "is shorter than backoff.base");
      }
    }
    Boolean nonIdempotent = bool(n, "retryNonIdempotent", p + ".retryNonIdempotent");
    return new TrafficPolicy.Retry(pct, min, base, max, nonIdempotent != null && nonIdempotent);
  }

  private TrafficPolicy.@Nullable RateLimit rateLimit(JsonNode n) {
    if (absent(n) || !fields(n, "spec.rateLimit", RL)) {
      return null;
    }
    String p = "spec.rateLimit";
    if (absent(n.path("maxTokens"))) {
      error(p + ".maxTokens", "is required");
    }
    int maxTokens = integer(n, "maxTokens", p, 1, 1_000_000_000, 1);
    int perFill = integer(n, "tokensPerFill", p, 1, 1_000_000_000, maxTokens);
    Duration interval = duration(n, "fillInterval", p + ".fillInterval", Duration.ofSeconds(1));
    if (interval.compareTo(Duration.ofMillis(1)) < 0) {
      error(p + ".fillInterval", "must be at least 1ms");
    }
    Boolean perSource = bool(n, "perSource", p + ".perSource");
    int maxSources = integer(n, "maxSources", p, 1, MAX_SOURCES_LIMIT, 1024);
    return new TrafficPolicy.RateLimit(
        maxTokens, perFill, interval, perSource != null && perSource, maxSources);
  }

  /** Absent: null (the proxy's flag); {@code 0s}: never; else at most a week. */
  private @Nullable Duration tcpIdleTimeout(JsonNode spec) {
    String p = "spec.tcpIdleTimeout";
    String text = text(spec, "tcpIdleTimeout", p);
    if (text == null) {
      return null;
    }
    if (text.matches("0+(h|ms|m|s)")) {
      return Duration.ZERO;
    }
    Duration d = duration(spec, "tcpIdleTimeout", p, Duration.ZERO);
    if (d.compareTo(TrafficPolicy.MAX_TCP_IDLE_TIMEOUT) > 0) {
      error(p, quote(text) + " is longer than 168h (0s turns the timeout off)");
      return null;
    }
    return d;
  }

  // ---- field helpers ----

  private static boolean absent(JsonNode n) {
    return n.isMissingNode() || n.isNull();
  }

  /** True when a mapping; unknown keys are errors (a misspelt limit must not silently vanish). */
  private boolean fields(JsonNode node, String path, Set<String> allowed) {
    if (!node.isObject()) {
      error(path, "expected a mapping");
      return false;
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!allowed.contains(e.getKey())) {
        error(
            path + "." + e.getKey(),
            "unknown field (expected one of " + String.join(", ", new TreeSet<>(allowed)) + ")");
      }
    }
    return true;
  }

  private int integer(JsonNode parent, String field, String path, int min, int max, int dflt) {
    JsonNode n = parent.path(field);
    String p = path + "." + field;
    if (absent(n)) {
      return dflt;
    }
    if (!n.isIntegralNumber() || !n.canConvertToLong()) {
      error(p, quote(n.asText()) + " is not an integer");
      return dflt;
    }
    long v = n.longValue();
    if (v < min || v > max) {
      error(p, v + " is out of range " + min + "-" + max);
      return dflt;
    }
    return (int) v;
  }

  private @Nullable Boolean bool(JsonNode parent, String field, String path) {
    JsonNode n = parent.path(field);
    if (absent(n)) {
      return null;
    }
    if (!n.isBoolean()) {
      error(path, quote(n.asText()) + " is not true or false");
      return null;
    }
    return n.booleanValue();
  }

  private Duration duration(JsonNode parent, String field, String path, Duration dflt) {
    String text = text(parent, field, path);
    if (text == null) {
      return dflt;
    }
    if (!DURATION.matcher(text).matches()) {
      error(path, quote(text) + " is not a duration (e.g. 10s, 1m30s, 250ms)");
      return dflt;
    }
    Duration d = Duration.ZERO;
    Matcher m = DURATION_PART.matcher(text);
    while (m.find()) {
      long v = Long.parseLong(m.group(1));
      d =
          d.plus(
              switch (m.group(2)) {
                case "h" -> Duration.ofHours(v);
                case "m" -> Duration.ofMinutes(v);
                case "s" -> Duration.ofSeconds(v);
                default -> Duration.ofMillis(v);
              });
    }
    if (d.isZero()) {
      error(path, "must be more than 0");
      return dflt;
    }
    return d;
  }

  private @Nullable String text(JsonNode parent, String field, String path) {
    JsonNode n = parent.path(field);
    if (absent(n)) {
      return null;
    }
    if (!n.isValueNode()) {
      error(path, "expected a string, found a " + (n.isArray() ? "list" : "mapping"));
      return null;
    }
    return n.asText();
  }

  private void error(String path, String problem) {
    errors.add(where + ": " + path + ": " + problem);
  }

  private static String quote(@Nullable String s) {
    return "\"" + s + "\"";
  }
}
