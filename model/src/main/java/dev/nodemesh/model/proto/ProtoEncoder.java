package dev.nodemesh.model.proto;

import dev.nodemesh.api.config.v1.BackendRef;
import dev.nodemesh.api.config.v1.EndpointList;
import dev.nodemesh.api.config.v1.HeaderModifier;
import dev.nodemesh.api.config.v1.HttpMatch;
import dev.nodemesh.api.config.v1.HttpRoute;
import dev.nodemesh.api.config.v1.HttpRouteRule;
import dev.nodemesh.api.config.v1.NamedPort;
import dev.nodemesh.api.config.v1.RetryPolicy;
import dev.nodemesh.api.config.v1.RouteParent;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.api.config.v1.Service;
import dev.nodemesh.api.config.v1.StringMatch;
import dev.nodemesh.api.config.v1.TunnelProtocol;
import dev.nodemesh.api.config.v1.UrlRewrite;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.TextMatch;
import java.net.InetAddress;
import java.time.Duration;
import java.util.Collection;
import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * The proxy's validated records (what the YAML parser produces for both sources) as {@code
 * nodemesh.config.v1} messages. Lists that have no meaningful order are sorted so equal content
 * always gives an equal message, and so an equal version.
 */
public final class ProtoEncoder {
  private ProtoEncoder() {}

  /** The resource name of every namespaced type: {@code <namespace>/<name>}. */
  public static String name(String namespace, String name) {
    return namespace + "/" + name;
  }

  public static Workload workload(dev.nodemesh.model.config.Workload w, boolean ready) {
    Workload.Builder b =
        Workload.newBuilder()
            .setUid(w.uid())
            .setName(w.name())
            .setNamespace(w.namespace())
            .setServiceAccount(w.serviceAccount())
            .setNode(w.nodeName())
            .putAllLabels(w.labels())
            .setTunnel(
                w.captured() ? TunnelProtocol.HBONE : TunnelProtocol.TUNNEL_PROTOCOL_UNSPECIFIED)
            .setZone(w.zone())
            .setReady(ready);
    for (InetAddress ip : w.ips()) {
      b.addIps(ip.getHostAddress());
    }
    new TreeMap<>(w.namedPorts())
        .forEach((name, port) -> b.addPorts(NamedPort.newBuilder().setName(name).setPort(port)));
    return b.build();
  }

  /**
   * @param endpointUids the workloads behind a Service without selector (from its EndpointSlices);
   *     ignored when it has a selector
   */
  public static Service service(MeshService s, Collection<String> endpointUids) {
    Service.Builder b = Service.newBuilder().setName(s.name()).setNamespace(s.namespace());
    for (InetAddress vip : s.vips()) {
      b.addVips(vip.getHostAddress());
    }
    for (ServicePort p : s.ports()) {
      dev.nodemesh.api.config.v1.ServicePort.Builder pb =
          dev.nodemesh.api.config.v1.ServicePort.newBuilder()
              .setPort(p.port())
              .setName(p.name())
              .setAppProtocol(p.appProtocol());
      String targetName = p.targetPortName();
      if (targetName != null) {
        pb.setTargetPortName(targetName);
      } else {
        pb.setTargetPort(p.targetPort());
      }
      b.addPorts(pb);
    }
    Map<String, String> selector = s.selector();
    if (!selector.isEmpty()) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(selector));
    } else if (!endpointUids.isEmpty()) {
      b.setEndpointList(
          EndpointList.newBuilder().addAllWorkloadUids(endpointUids.stream().sorted().toList()));
    }
    return b.build();
  }

  public static dev.nodemesh.api.config.v1.AuthorizationPolicy authorizationPolicy(
      AuthorizationPolicy p) {
    var b =
        dev.nodemesh.api.config.v1.AuthorizationPolicy.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setAction(
                p.action() == AuthorizationPolicy.Action.ALLOW
                    ? dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.ALLOW
                    : dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.DENY);
    if (!p.selector().isEmpty()) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(p.selector()));
    }
    // Rule, source and operation order is kept: it has no meaning, but it is what the user wrote,
    // and the same file always gives the same order (so the same version).
    for (AuthorizationPolicy.Rule r : p.rules()) {
      var rb = dev.nodemesh.api.config.v1.AuthorizationPolicy.Rule.newBuilder();
      for (AuthorizationPolicy.Source src : r.from()) {
        rb.addFrom(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Source.newBuilder()
                .addAllPrincipals(src.principals())
                .addAllNotPrincipals(src.notPrincipals())
                .addAllNamespaces(src.namespaces())
                .addAllNotNamespaces(src.notNamespaces())
                .addAllIpBlocks(src.ipBlocks().stream().map(Cidr::toString).toList())
                .addAllNotIpBlocks(src.notIpBlocks().stream().map(Cidr::toString).toList()));
      }
      for (AuthorizationPolicy.Operation op : r.to()) {
        rb.addTo(
            dev.nodemesh.api.config.v1.AuthorizationPolicy.Operation.newBuilder()
                .addAllPorts(op.ports())
                .addAllNotPorts(op.notPorts())
                .addAllMethods(op.methods())
                .addAllNotMethods(op.notMethods())
                .addAllPaths(op.paths())
                .addAllNotPaths(op.notPaths())
                .putAllHeaders(op.headers()));
      }
      b.addRules(rb);
    }
    return b.build();
  }

  /** A TrafficPolicy as its resource; every field explicit (the proto's defaults are not ours). */
  public static dev.nodemesh.api.config.v1.TrafficPolicy trafficPolicy(
      dev.nodemesh.model.config.TrafficPolicy p) {
    var b =
        dev.nodemesh.api.config.v1.TrafficPolicy.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setService(p.service());
    var lb = p.loadBalancer();
    b.setLoadBalancer(
        dev.nodemesh.api.config.v1.TrafficPolicy.LoadBalancer.newBuilder()
            .setAlgorithm(
                dev.nodemesh.api.config.v1.TrafficPolicy.Algorithm.valueOf(lb.algorithm().name()))
            .setHashHeader(lb.hashHeader() == null ? "" : lb.hashHeader())
            .setHashSourceIp(lb.hashSourceIp())
            .setLocalityPreference(lb.localityPreference()));
    var cb = p.circuitBreaker();
    if (cb != null) {
      b.setCircuitBreaker(
          dev.nodemesh.api.config.v1.TrafficPolicy.CircuitBreaker.newBuilder()
              .setMaxConnections(cb.maxConnections())
              .setMaxPendingRequests(cb.maxPendingRequests())
              .setMaxRequests(cb.maxRequests()));
    }
    var od = p.outlierDetection();
    if (od != null) {
      b.setOutlierDetection(
          dev.nodemesh.api.config.v1.TrafficPolicy.OutlierDetection.newBuilder()
              .setConsecutive5Xx(od.consecutive5xx())
              .setConsecutiveGatewayErrors(od.consecutiveGatewayErrors())
              .setConsecutiveConnectFailures(od.consecutiveConnectFailures())
              .setBaseEjectionTimeMs(od.baseEjectionTime().toMillis())
              .setMaxEjectionTimeMs(od.maxEjectionTime().toMillis())
              .setMaxEjectionPercent(od.maxEjectionPercent()));
    }
    var r = p.retry();
    b.setRetry(
        dev.nodemesh.api.config.v1.TrafficPolicy.Retry.newBuilder()
            .setBudgetPercent(r.budgetPercent())
            .setMinRetryConcurrency(r.minRetryConcurrency())
            .setBackoffBaseMs(r.backoffBase().toMillis())
            .setBackoffMaxMs(r.backoffMax().toMillis())
            .setRetryNonIdempotent(r.retryNonIdempotent()));
    var rl = p.rateLimit();
    if (rl != null) {
      b.setRateLimit(
          dev.nodemesh.api.config.v1.TrafficPolicy.RateLimit.newBuilder()
              .setMaxTokens(rl.maxTokens())
              .setTokensPerFill(rl.tokensPerFill())
              .setFillIntervalMs(rl.fillInterval().toMillis())
              .setPerSource(rl.perSource())
              .setMaxSources(rl.maxSources()));
    }
    return b.build();
  }

  /**
   * The resource name of an HTTPRoute or GRPCRoute: {@code <namespace>/<name>} for an HTTPRoute,
   * {@code GRPCRoute/<namespace>/<name>} for a GRPCRoute. Both kinds travel as {@code HttpRoute}
   * resources, and Kubernetes lets an HTTPRoute and a GRPCRoute share a name; a namespace never
   * contains "/", so the two forms cannot meet.
   */
  public static String routeName(dev.nodemesh.model.config.HttpRoute r) {
    return routeName(r.namespace(), r.name(), r.grpc());
  }

  /** See {@link #routeName(dev.nodemesh.model.config.HttpRoute)}. */
  public static String routeName(String namespace, String name, boolean grpc) {
    return (grpc ? GRPC_ROUTE_PREFIX : "") + name(namespace, name);
  }

  /** What a GRPCRoute's resource name starts with. */
  public static final String GRPC_ROUTE_PREFIX = "GRPCRoute/";

  /** An HTTPFault as its resource; the percentages travel as the parts per million they are. */
  public static dev.nodemesh.api.config.v1.HttpFault httpFault(
      dev.nodemesh.model.config.HttpFault f) {
    var b =
        dev.nodemesh.api.config.v1.HttpFault.newBuilder()
            .setName(f.name())
            .setNamespace(f.namespace());
    var d = f.delay();
    if (d != null) {
      java.time.Duration fixed = d.fixed();
      // Both fields: fixed_delay exact, fixed_delay_ms rounded up for proxies that predate it
      // (rounding down would turn a sub-millisecond delay into 0, which they NACK).
      long ceilMs = fixed.plusNanos(999_999).toMillis();
      b.setDelay(
          dev.nodemesh.api.config.v1.HttpFault.Delay.newBuilder()
              .setFixedDelayMs(ceilMs)
              .setFixedDelay(
                  com.google.protobuf.Duration.newBuilder()
                      .setSeconds(fixed.getSeconds())
                      .setNanos(fixed.getNano()))
              .setPerMillion(d.perMillion()));
    }
    var a = f.abort();
    if (a != null) {
      Integer grpc = a.grpcStatus();
      b.setAbort(
          dev.nodemesh.api.config.v1.HttpFault.Abort.newBuilder()
              .setHttpStatus(a.httpStatus())
              .setGrpcStatus(grpc == null ? 0 : grpc)
              .setPerMillion(a.perMillion()));
    }
    return b.build();
  }

  /** An HTTPRoute as its resource; maps are sorted by protobuf's map encoding, lists kept. */
  public static HttpRoute httpRoute(dev.nodemesh.model.config.HttpRoute r) {
    HttpRoute.Builder b =
        HttpRoute.newBuilder()
            .setName(r.name())
            .setNamespace(r.namespace())
            .setRetryNonIdempotent(r.retryNonIdempotent())
            .setCreatedEpochSeconds(r.createdEpochSeconds())
            .setGrpc(r.grpc());
    for (dev.nodemesh.model.config.HttpRoute.Parent p : r.parents()) {
      b.addParents(
          RouteParent.newBuilder()
              .setNamespace(p.service().namespace())
              .setService(p.service().name())
              .setPort(p.port()));
    }
    for (dev.nodemesh.model.config.HttpRoute.Rule rule : r.rules()) {
      HttpRouteRule.Builder rb = HttpRouteRule.newBuilder();
      for (dev.nodemesh.model.config.HttpRoute.Match m : rule.matches()) {
        HttpMatch.Builder mb = HttpMatch.newBuilder().setPath(text(m.path()));
        m.headers().forEach(h -> mb.addHeaders(text(h)));
        m.queryParams().forEach(q -> mb.addQueryParams(text(q)));
        String method = m.method();
        if (method != null) {
          mb.setMethod(method);
        }
        rb.addMatches(mb);
      }
      for (dev.nodemesh.model.config.HttpRoute.Backend be : rule.backends()) {
        rb.addBackends(
            BackendRef.newBuilder()
                .setNamespace(be.service().namespace())
                .setService(be.service().name())
                .setPort(be.port())
                .setWeight(be.weight())
                .setNotPermitted(!be.permitted()));
      }
      rb.setRequestHeaders(modifier(rule.requestHeaders()));
      rb.setResponseHeaders(modifier(rule.responseHeaders()));
      dev.nodemesh.model.config.HttpRoute.Rewrite rw = rule.rewrite();
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
      dev.nodemesh.model.config.HttpRoute.Retry retry = rule.retry();
      if (retry != null) {
        rb.setRetry(
            RetryPolicy.newBuilder()
                .setAttempts(retry.attempts())
                .addAllCodes(new TreeSet<>(retry.codes()))
                .setBackoffMs(retry.backoff().toMillis()));
      }
      dev.nodemesh.model.config.NamespacedName fault = rule.fault();
      if (fault != null) {
        rb.setFault(fault.name());
      }
      dev.nodemesh.model.config.HttpRoute.Mirror mirror = rule.mirror();
      if (mirror != null) {
        rb.setMirror(
            dev.nodemesh.api.config.v1.MirrorRef.newBuilder()
                .setNamespace(mirror.service().namespace())
                .setService(mirror.service().name())
                .setPort(mirror.port())
                .setPercent(mirror.percent()));
      }
      b.addRules(rb);
    }
    return b.build();
  }

  public static dev.nodemesh.api.config.v1.PeerAuthentication peerAuthentication(
      PeerAuthentication p) {
    var b =
        dev.nodemesh.api.config.v1.PeerAuthentication.newBuilder()
            .setName(p.name())
            .setNamespace(p.namespace())
            .setMode(
                p.mode() == PeerAuthentication.Mode.STRICT
                    ? dev.nodemesh.api.config.v1.PeerAuthentication.Mode.STRICT
                    : dev.nodemesh.api.config.v1.PeerAuthentication.Mode.PERMISSIVE);
    Map<String, String> selector = p.selector();
    if (selector != null) {
      b.setSelector(Selector.newBuilder().putAllMatchLabels(selector));
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

  private static HeaderModifier modifier(dev.nodemesh.model.config.HttpRoute.HeaderModifier m) {
    return HeaderModifier.newBuilder()
        .putAllSet(m.set())
        .putAllAdd(m.add())
        .addAllRemove(new TreeSet<>(m.remove()))
        .build();
  }
}
