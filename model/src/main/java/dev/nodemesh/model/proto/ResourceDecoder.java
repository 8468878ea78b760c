package dev.nodemesh.model.proto;

import dev.nodemesh.api.config.v1.BackendRef;
import dev.nodemesh.api.config.v1.HeaderModifier;
import dev.nodemesh.api.config.v1.HttpMatch;
import dev.nodemesh.api.config.v1.HttpRouteRule;
import dev.nodemesh.api.config.v1.NamedPort;
import dev.nodemesh.api.config.v1.RouteParent;
import dev.nodemesh.api.config.v1.StringMatch;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.UrlRewrite;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.FieldRules;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TextMatch;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.PatternSyntaxException;
import org.jspecify.annotations.Nullable;

/**
 * Turns one xDS resource (a {@code nodemesh.config.v1} message) into the record the snapshot holds,
 * checking every field it reads. Problems are appended as {@code <Type> <resource name>: <field>:
 * <problem>} so a NACK names each bad resource and field; a resource with any problem yields null.
 * The control plane validates the same objects when it reads them, so a problem here means the two
 * disagree (versions, or a bug), which is exactly what a NACK is for.
 */
public final class ResourceDecoder {

  private final List<String> errors;
  private String where = "";

  public ResourceDecoder(List<String> errors) {
    this.errors = errors;
  }

  public @Nullable Workload workload(String resourceName, dev.nodemesh.api.config.v1.Workload w) {
    int before = errors.size();
    where = "Workload " + resourceName;
    identity(resourceName, w.getNamespace(), w.getName());
    if (w.getUid().isEmpty()) {
      error("uid", "is required");
    }
    List<InetAddress> ips = new ArrayList<>();
    for (int i = 0; i < w.getIpsCount(); i++) {
      InetAddress ip = ip(w.getIps(i), "ips[" + i + "]");
      if (ip != null && !ips.contains(ip)) {
        ips.add(ip);
      } else if (ip != null) {
        error("ips[" + i + "]", w.getIps(i) + " is listed twice");
      }
    }
    if (w.getIpsCount() == 0) {
      error("ips", "at least one IP is required");
    }
    Map<String, Integer> named = new HashMap<>();
    for (int i = 0; i < w.getPortsCount(); i++) {
      NamedPort p = w.getPorts(i);
      String path = "ports[" + i + "]";
      if (portName(p.getName(), path + ".name") && named.put(p.getName(), p.getPort()) != null) {
        error(path + ".name", "\"" + p.getName() + "\" is declared twice");
      }
      port(p.getPort(), path + ".port");
    }
    if (errors.size() > before) {
      return null;
    }
    return new Workload(
        w.getUid(),
        w.getName(),
        w.getNamespace(),
        ips,
        w.getLabelsMap(),
        w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount(),
        w.getNode(),
        named,
        w.getZone().isEmpty()
            ? w.getLabelsMap().getOrDefault(Workload.ZONE_LABEL, "")
            : w.getZone(),
        // HBONE: a node proxy serves the pod; unspecified: plain TCP, nothing would serve a tunnel.
        w.getTunnel() == TunnelProtocol.HBONE);
  }

  public @Nullable MeshService service(String resourceName, dev.nodemesh.api.config.v1.Service s) {
    int before = errors.size();
    where = "Service " + resourceName;
    identity(resourceName, s.getNamespace(), s.getName());
    List<InetAddress> vips = new ArrayList<>();
    for (int i = 0; i < s.getVipsCount(); i++) {
      InetAddress vip = ip(s.getVips(i), "vips[" + i + "]");
      if (vip != null && !vips.contains(vip)) {
        vips.add(vip);
      } else if (vip != null) {
        error("vips[" + i + "]", s.getVips(i) + " is listed twice");
      }
    }
    List<ServicePort> ports = new ArrayList<>();
    Set<Integer> numbers = new HashSet<>();
    for (int i = 0; i < s.getPortsCount(); i++) {
      dev.nodemesh.api.config.v1.ServicePort p = s.getPorts(i);
      String path = "ports[" + i + "]";
      boolean ok = port(p.getPort(), path + ".port");
      if (ok && !numbers.add(p.getPort())) {
        error(path + ".port", p.getPort() + " is listed twice");
        ok = false;
      }
      String appProtocol = p.getAppProtocol().isEmpty() ? "tcp" : p.getAppProtocol();
      switch (p.getTargetCase()) {
        case TARGET_PORT -> {
          if (port(p.getTargetPort(), path + ".target_port") && ok) {
            ports.add(
                ServicePort.numeric(p.getName(), p.getPort(), p.getTargetPort(), appProtocol));
          }
        }
        case TARGET_PORT_NAME -> {
          if (portName(p.getTargetPortName(), path + ".target_port_name") && ok) {
            ports.add(
                new ServicePort(p.getName(), p.getPort(), 0, p.getTargetPortName(), appProtocol));
          }
        }
        case TARGET_NOT_SET ->
            error(path + ".target", "target_port or target_port_name is required");
      }
    }
    Map<String, String> selector = Map.of();
    Set<String> uids = Set.of();
    switch (s.getEndpointsCase()) {
      case SELECTOR -> {
        selector = s.getSelector().getMatchLabelsMap();
        if (selector.isEmpty()) {
          error("selector.match_labels", "an empty selector would select nothing; leave it unset");
        }
      }
      case ENDPOINT_LIST -> uids = Set.copyOf(s.getEndpointList().getWorkloadUidsList());
      case ENDPOINTS_NOT_SET -> {} // no endpoints: connections to it fail, as in Kubernetes
    }
    if (errors.size() > before) {
      return null;
    }
    return new MeshService(s.getName(), s.getNamespace(), vips, ports, selector, uids);
  }

  public @Nullable AuthorizationPolicy authorizationPolicy(
      String resourceName, dev.nodemesh.api.config.v1.AuthorizationPolicy p) {
    int before = errors.size();
    where = "AuthorizationPolicy " + resourceName;
    identity(resourceName, p.getNamespace(), p.getName());
    AuthorizationPolicy.Action action = null;
    switch (p.getAction()) {
      case ALLOW -> action = AuthorizationPolicy.Action.ALLOW;
      case DENY -> action = AuthorizationPolicy.Action.DENY;
      default -> error("action", p.getAction() + " is not ALLOW or DENY");
    }
    List<AuthorizationPolicy.Rule> rules = new ArrayList<>();
    for (int i = 0; i < p.getRulesCount(); i++) {
      var r = p.getRules(i);
      String rpath = "rules[" + i + "]";
      List<AuthorizationPolicy.Source> from = new ArrayList<>();
      for (int j = 0; j < r.getFromCount(); j++) {
        var src = r.getFrom(j);
        String spath = rpath + ".from[" + j + "]";
        if (src.getSerializedSize() == 0) {
          error(spath, "is empty; name at least one field");
        }
        from.add(
            new AuthorizationPolicy.Source(
                patterns(src.getPrincipalsList(), spath + ".principals", true),
                patterns(src.getNotPrincipalsList(), spath + ".not_principals", true),
                patterns(src.getNamespacesList(), spath + ".namespaces", false),
                patterns(src.getNotNamespacesList(), spath + ".not_namespaces", false),
                cidrs(src.getIpBlocksList(), spath + ".ip_blocks"),
                cidrs(src.getNotIpBlocksList(), spath + ".not_ip_blocks")));
      }
      List<AuthorizationPolicy.Operation> to = new ArrayList<>();
      for (int j = 0; j < r.getToCount(); j++) {
        var op = r.getTo(j);
        String opath = rpath + ".to[" + j + "]";
        if (op.getSerializedSize() == 0) {
          error(opath, "is empty; name at least one field");
        }
        for (int k = 0; k < op.getPortsCount(); k++) {
          port(op.getPorts(k), opath + ".ports[" + k + "]");
        }
        for (int k = 0; k < op.getNotPortsCount(); k++) {
          port(op.getNotPorts(k), opath + ".not_ports[" + k + "]");
        }
        for (String m : op.getMethodsList()) {
          method(m, opath + ".methods");
        }
        for (String m : op.getNotMethodsList()) {
          method(m, opath + ".not_methods");
        }
        to.add(
            new AuthorizationPolicy.Operation(
                op.getPortsList(),
                op.getNotPortsList(),
                op.getMethodsList(),
                op.getNotMethodsList(),
                patterns(op.getPathsList(), opath + ".paths", false),
                patterns(op.getNotPathsList(), opath + ".not_paths", false),
                op.getHeadersMap()));
      }
      rules.add(new AuthorizationPolicy.Rule(from, to));
    }
    if (errors.size() > before || action == null) {
      return null;
    }
    return new AuthorizationPolicy(
        p.getName(), p.getNamespace(), p.getSelector().getMatchLabelsMap(), action, rules);
  }

  private void method(String m, String path) {
    if (!FieldRules.isHttpMethod(m)) {
      error(path, "\"" + m + "\" is not an HTTP method");
    }
  }

  public @Nullable PeerAuthentication peerAuthentication(
      String resourceName, dev.nodemesh.api.config.v1.PeerAuthentication p) {
    int before = errors.size();
    where = "PeerAuthentication " + resourceName;
    identity(resourceName, p.getNamespace(), p.getName());
    PeerAuthentication.Mode mode = null;
    switch (p.getMode()) {
      case STRICT -> mode = PeerAuthentication.Mode.STRICT;
      case PERMISSIVE -> mode = PeerAuthentication.Mode.PERMISSIVE;
      default -> error("mode", p.getMode() + " is not STRICT or PERMISSIVE");
    }
    if (errors.size() > before || mode == null) {
      return null;
    }
    return new PeerAuthentication(
        p.getName(), p.getNamespace(), p.getSelector().getMatchLabelsMap(), mode);
  }

  /** Same rules as the YAML parser: exact, or one '*' first or last; exact principals spiffe://. */
  private List<String> patterns(List<String> values, String path, boolean principal) {
    for (int i = 0; i < values.size(); i++) {
      String v = values.get(i);
      int star = v.indexOf('*');
      boolean wellFormed =
          !v.isEmpty()
              && (star < 0
                  || (v.indexOf('*', star + 1) < 0 && (star == 0 || star == v.length() - 1)));
      if (!wellFormed) {
        error(path + "[" + i + "]", "\"" + v + "\" is not an exact value, prefix* or *suffix");
      } else if (principal && star < 0 && !v.startsWith("spiffe://")) {
        error(path + "[" + i + "]", "\"" + v + "\" is not a spiffe:// URI");
      }
    }
    return values;
  }

  private List<Cidr> cidrs(List<String> values, String path) {
    List<Cidr> out = new ArrayList<>();
    for (int i = 0; i < values.size(); i++) {
      Cidr c = Cidr.parse(values.get(i));
      if (c == null) {
        error(path + "[" + i + "]", "\"" + values.get(i) + "\" is not an IP or CIDR block");
      } else {
        out.add(c);
      }
    }
    return out;
  }

  public @Nullable HttpRoute httpRoute(
      String resourceName, dev.nodemesh.api.config.v1.HttpRoute r) {
    int before = errors.size();
    where = "HttpRoute " + resourceName;
    // A GRPCRoute's name carries its kind, so it cannot collide with an HTTPRoute of the same name.
    identity(resourceName, r.getNamespace(), r.getName(), r.getGrpc() ? GRPC_ROUTE_PREFIX : "");
    List<HttpRoute.Parent> parents = new ArrayList<>();
    for (int i = 0; i < r.getParentsCount(); i++) {
      RouteParent p = r.getParents(i);
      String path = "parents[" + i + "]";
      if (p.getService().isEmpty() || p.getNamespace().isEmpty()) {
        error(path, "namespace and service are required");
      } else if (p.getPort() == 0 || port(p.getPort(), path + ".port")) {
        parents.add(
            new HttpRoute.Parent(
                new NamespacedName(p.getNamespace(), p.getService()), p.getPort()));
      }
    }
    if (parents.isEmpty()) {
      error("parents", "at least one parent Service is required");
    }
    List<HttpRoute.Rule> rules = new ArrayList<>();
    for (int i = 0; i < r.getRulesCount(); i++) {
      HttpRoute.Rule rule = rule(r.getRules(i), "rules[" + i + "]", r.getNamespace());
      if (rule != null) {
        rules.add(rule);
      }
    }
    if (errors.size() > before) {
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

  private HttpRoute.@Nullable Rule rule(HttpRouteRule r, String path, String namespace) {
    int before = errors.size();
    List<HttpRoute.Match> matches = new ArrayList<>();
    for (int i = 0; i < r.getMatchesCount(); i++) {
      HttpMatch m = r.getMatches(i);
      String mpath = path + ".matches[" + i + "]";
      TextMatch p = text(m.getPath(), mpath + ".path");
      List<TextMatch> headers = new ArrayList<>();
      for (int j = 0; j < m.getHeadersCount(); j++) {
        TextMatch t = text(m.getHeaders(j), mpath + ".headers[" + j + "]");
        if (t != null) {
          headers.add(t);
        }
      }
      List<TextMatch> query = new ArrayList<>();
      for (int j = 0; j < m.getQueryParamsCount(); j++) {
        TextMatch t = text(m.getQueryParams(j), mpath + ".query_params[" + j + "]");
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
      error(path + ".matches", "at least one match is required");
    }
    List<HttpRoute.Backend> backends = new ArrayList<>();
    for (int i = 0; i < r.getBackendsCount(); i++) {
      BackendRef b = r.getBackends(i);
      if (b.getService().isEmpty() || b.getNamespace().isEmpty()) {
        error(path + ".backends[" + i + "]", "namespace and service are required");
      } else if (port(b.getPort(), path + ".backends[" + i + "].port")) {
        backends.add(
            new HttpRoute.Backend(
                new NamespacedName(b.getNamespace(), b.getService()),
                b.getPort(),
                b.getWeight(),
                !b.getNotPermitted()));
      }
    }
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
        error(path + ".mirror", "namespace and service are required, percent 0-100");
      } else if (port(m.getPort(), path + ".mirror.port")) {
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
          error(path + ".retry.codes", c + " is not in 400-599");
        }
        codes.add(c);
      }
      retry =
          new HttpRoute.Retry(
              r.getRetry().getAttempts(), codes, Duration.ofMillis(r.getRetry().getBackoffMs()));
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpRoute.Rule(
        matches,
        backends,
        modifier(r.getRequestHeaders()),
        modifier(r.getResponseHeaders()),
        rewrite,
        r.getRequestTimeoutMs() == 0 ? null : Duration.ofMillis(r.getRequestTimeoutMs()),
        r.getBackendRequestTimeoutMs() == 0
            ? null
            : Duration.ofMillis(r.getBackendRequestTimeoutMs()),
        retry,
        r.getFault().isEmpty() ? null : new NamespacedName(namespace, r.getFault()),
        mirror);
  }

  private static HttpRoute.HeaderModifier modifier(HeaderModifier m) {
    return new HttpRoute.HeaderModifier(
        m.getSetMap(), m.getAddMap(), Set.copyOf(m.getRemoveList()));
  }

  private @Nullable TextMatch text(StringMatch m, String path) {
    TextMatch.Kind kind =
        switch (m.getKind()) {
          case EXACT -> TextMatch.Kind.EXACT;
          case PATH_PREFIX -> TextMatch.Kind.PATH_PREFIX;
          case REGULAR_EXPRESSION -> TextMatch.Kind.REGULAR_EXPRESSION;
          case UNRECOGNIZED -> null;
        };
    if (kind == null) {
      error(path + ".kind", "unknown kind " + m.getKindValue());
      return null;
    }
    try {
      return new TextMatch(kind, m.getName(), m.getValue());
    } catch (PatternSyntaxException e) {
      error(path + ".value", "\"" + m.getValue() + "\" is not a valid regular expression");
      return null;
    }
  }

  /** Same limits as {@code TrafficPolicyParser}; each bad field is named. */
  public @Nullable TrafficPolicy trafficPolicy(
      String resourceName, dev.nodemesh.api.config.v1.TrafficPolicy p) {
    int before = errors.size();
    where = "TrafficPolicy " + resourceName;
    identity(resourceName, p.getNamespace(), p.getName());
    if (p.getService().isEmpty()) {
      error("service", "is required");
    }
    TrafficPolicy.LoadBalancer lb = TrafficPolicy.LoadBalancer.DEFAULT;
    if (p.hasLoadBalancer()) {
      var l = p.getLoadBalancer();
      TrafficPolicy.Algorithm algorithm =
          switch (l.getAlgorithm()) {
            case ROUND_ROBIN -> TrafficPolicy.Algorithm.ROUND_ROBIN;
            case RANDOM -> TrafficPolicy.Algorithm.RANDOM;
            case LEAST_REQUEST -> TrafficPolicy.Algorithm.LEAST_REQUEST;
            case RING_HASH -> TrafficPolicy.Algorithm.RING_HASH;
            case PEAK_EWMA -> TrafficPolicy.Algorithm.PEAK_EWMA;
            case ALGORITHM_UNSPECIFIED, UNRECOGNIZED -> null;
          };
      if (algorithm == null) {
        error("load_balancer.algorithm", "unknown algorithm " + l.getAlgorithmValue());
        algorithm = TrafficPolicy.Algorithm.PEAK_EWMA;
      }
      boolean hashed = !l.getHashHeader().isEmpty() || l.getHashSourceIp();
      if (hashed && algorithm != TrafficPolicy.Algorithm.RING_HASH) {
        error("load_balancer", "a hash is only for algorithm RING_HASH");
      }
      if (!l.getHashHeader().isEmpty() && l.getHashSourceIp()) {
        error("load_balancer", "hash_header and hash_source_ip are exclusive");
      }
      lb =
          new TrafficPolicy.LoadBalancer(
              algorithm,
              l.getHashHeader().isEmpty() ? null : l.getHashHeader(),
              l.getHashSourceIp(),
              l.getLocalityPreference());
    }
    TrafficPolicy.CircuitBreaker cb = null;
    if (p.hasCircuitBreaker()) {
      var c = p.getCircuitBreaker();
      cb =
          new TrafficPolicy.CircuitBreaker(
              positive(c.getMaxConnections(), "circuit_breaker.max_connections"),
              positive(c.getMaxPendingRequests(), "circuit_breaker.max_pending_requests"),
              positive(c.getMaxRequests(), "circuit_breaker.max_requests"));
    }
    TrafficPolicy.OutlierDetection od = null;
    if (p.hasOutlierDetection()) {
      var o = p.getOutlierDetection();
      if (o.getMaxEjectionPercent() > 100) {
        error(
            "outlier_detection.max_ejection_percent", o.getMaxEjectionPercent() + " is above 100");
      }
      if (o.getBaseEjectionTimeMs() == 0 || o.getMaxEjectionTimeMs() < o.getBaseEjectionTimeMs()) {
        error("outlier_detection", "need 0 < base_ejection_time_ms <= max_ejection_time_ms");
      }
      if (o.getConsecutive5Xx()
              + o.getConsecutiveGatewayErrors()
              + o.getConsecutiveConnectFailures()
          == 0) {
        error("outlier_detection", "every consecutive_* counter is 0");
      }
      od =
          new TrafficPolicy.OutlierDetection(
              o.getConsecutive5Xx(),
              o.getConsecutiveGatewayErrors(),
              o.getConsecutiveConnectFailures(),
              Duration.ofMillis(o.getBaseEjectionTimeMs()),
              Duration.ofMillis(o.getMaxEjectionTimeMs()),
              o.getMaxEjectionPercent());
    }
    TrafficPolicy.Retry retry = TrafficPolicy.Retry.DEFAULT;
    if (p.hasRetry()) {
      var r = p.getRetry();
      if (r.getBudgetPercent() > 100) {
        error("retry.budget_percent", r.getBudgetPercent() + " is above 100");
      }
      if (r.getBackoffMaxMs() < r.getBackoffBaseMs()) {
        error("retry.backoff_max_ms", "is below backoff_base_ms");
      }
      retry =
          new TrafficPolicy.Retry(
              r.getBudgetPercent(),
              r.getMinRetryConcurrency(),
              Duration.ofMillis(r.getBackoffBaseMs()),
              Duration.ofMillis(r.getBackoffMaxMs()),
              r.getRetryNonIdempotent());
    }
    TrafficPolicy.RateLimit rl = null;
    if (p.hasRateLimit()) {
      var r = p.getRateLimit();
      if (r.getMaxTokens() == 0 || r.getTokensPerFill() == 0 || r.getFillIntervalMs() == 0) {
        error("rate_limit", "max_tokens, tokens_per_fill and fill_interval_ms must be above 0");
      }
      if (r.getMaxSources() == 0) {
        error("rate_limit.max_sources", "must be above 0");
      }
      rl =
          new TrafficPolicy.RateLimit(
              r.getMaxTokens(),
              r.getTokensPerFill(),
              Duration.ofMillis(r.getFillIntervalMs()),
              r.getPerSource(),
              r.getMaxSources());
    }
    if (errors.size() > before) {
      return null;
    }
    return new TrafficPolicy(p.getName(), p.getNamespace(), p.getService(), lb, cb, od, retry, rl);
  }

  private int positive(int value, String path) {
    if (value <= 0) {
      error(path, (value & 0xffffffffL) + " is not in 1-" + Integer.MAX_VALUE);
    }
    return value;
  }

  private void identity(String resourceName, String namespace, String name) {
    identity(resourceName, namespace, name, "");
  }

  /** {@code resourceName} must be {@code <prefix><namespace>/<name>}. */
  private void identity(String resourceName, String namespace, String name, String prefix) {
    if (name.isEmpty()) {
      error("name", "is required");
    }
    if (namespace.isEmpty()) {
      error("namespace", "is required");
    }
    if (!resourceName.equals(prefix + namespace + "/" + name)) {
      error("name", "resource name must be \"" + prefix + namespace + "/" + name + "\"");
    }
  }

  /** What a GRPCRoute's resource name starts with (the control plane's ProtoEncoder.routeName). */
  static final String GRPC_ROUTE_PREFIX = "GRPCRoute/";

  /** Same limits as {@code ResourceParser.httpFault}; each bad field is named. */
  public @Nullable HttpFault httpFault(
      String resourceName, dev.nodemesh.api.config.v1.HttpFault f) {
    int before = errors.size();
    where = "HttpFault " + resourceName;
    identity(resourceName, f.getNamespace(), f.getName());
    HttpFault.Delay delay = null;
    if (f.hasDelay()) {
      var d = f.getDelay();
      Duration fixed;
      if (d.hasFixedDelay()) {
        // The exact delay; fixed_delay_ms (its rounded copy for older proxies) is not read.
        var pd = d.getFixedDelay();
        fixed = Duration.ofSeconds(pd.getSeconds(), pd.getNanos());
        if (pd.getNanos() < 0 || pd.getNanos() > 999_999_999 || fixed.isNegative()) {
          error("delay.fixed_delay", "is not a valid positive google.protobuf.Duration");
        } else if (fixed.isZero()) {
          error("delay.fixed_delay", "must be above 0");
        }
      } else {
        if (d.getFixedDelayMs() == 0) {
          error("delay.fixed_delay_ms", "must be above 0");
        }
        fixed = Duration.ofMillis(d.getFixedDelayMs());
      }
      perMillion(d.getPerMillion(), "delay.per_million");
      if (!fixed.isNegative() && !fixed.isZero()) {
        delay = new HttpFault.Delay(fixed, d.getPerMillion());
      }
    }
    HttpFault.Abort abort = null;
    if (f.hasAbort()) {
      var a = f.getAbort();
      perMillion(a.getPerMillion(), "abort.per_million");
      if (a.getGrpcStatus() != 0) {
        if (a.getGrpcStatus() < 1 || a.getGrpcStatus() > 16) {
          error("abort.grpc_status", (a.getGrpcStatus() & 0xffffffffL) + " is not in 1-16");
        }
        abort = new HttpFault.Abort(200, a.getGrpcStatus(), a.getPerMillion());
      } else {
        if (a.getHttpStatus() < 200 || a.getHttpStatus() > 599) {
          error("abort.http_status", (a.getHttpStatus() & 0xffffffffL) + " is not in 200-599");
        }
        abort = new HttpFault.Abort(a.getHttpStatus(), null, a.getPerMillion());
      }
    }
    if (delay == null && abort == null) {
      error("delay", "delay or abort is required");
    }
    if (errors.size() > before) {
      return null;
    }
    return new HttpFault(f.getName(), f.getNamespace(), delay, abort);
  }

  private void perMillion(int value, String path) {
    if (value < 0 || value > HttpFault.MILLION) {
      error(path, (value & 0xffffffffL) + " is not in 0-" + HttpFault.MILLION);
    }
  }

  private boolean port(int port, String path) {
    if (!FieldRules.isPort(port)) {
      error(path, port + " is out of range 1-65535");
      return false;
    }
    return true;
  }

  private boolean portName(String name, String path) {
    if (!FieldRules.isPortName(name)) {
      error(path, "\"" + name + "\" is not a valid port name");
      return false;
    }
    return true;
  }

  private @Nullable InetAddress ip(String text, String path) {
    InetAddress ip = FieldRules.ipLiteral(text);
    if (ip == null) {
      error(path, "\"" + text + "\" is not an IP address");
    }
    return ip;
  }

  private void error(String path, String problem) {
    errors.add(where + ": " + path + ": " + problem);
  }
}
