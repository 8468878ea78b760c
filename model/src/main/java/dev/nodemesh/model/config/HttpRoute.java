package dev.nodemesh.model.config;

import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * A Gateway API {@code HTTPRoute} attached to Services (the GAMMA convention), reduced to what the
 * L7 proxy routes by, validated and defaulted: every rule has at least one match, weights are set,
 * durations are parsed. Gateway API's own names are kept where they exist.
 *
 * @param namespace the route's own namespace: with each parent's namespace it decides the route's
 *     {@link Role} toward that parent (GEP-1426)
 * @param parents the Services (and ports, 0 = every port) whose traffic this route takes; a parent
 *     may be in another namespace (a consumer route, which then shapes only its own namespace's
 *     calls)
 * @param retryNonIdempotent nodemesh extension (annotation {@code
 *     nodemesh.dev/retry-non-idempotent: "true"}): also retry POST, PATCH and other non-idempotent
 *     methods
 * @param createdEpochSeconds creation time; the older route wins a precedence tie (0 = unknown)
 * @param grpc true for a {@code GRPCRoute}: its gRPC service/method matches are held as path
 *     matches ({@link GrpcMatch}), and the proxy's own answers to its requests (a fault's abort)
 *     are gRPC statuses. An HTTPRoute and a GRPCRoute may share a name.
 */
public record HttpRoute(
    String name,
    String namespace,
    List<Parent> parents,
    List<Rule> rules,
    boolean retryNonIdempotent,
    long createdEpochSeconds,
    boolean grpc) {

  public HttpRoute {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    parents = List.copyOf(parents);
    rules = List.copyOf(rules);
  }

  /** An HTTPRoute (not a GRPCRoute). */
  public HttpRoute(
      String name,
      String namespace,
      List<Parent> parents,
      List<Rule> rules,
      boolean retryNonIdempotent,
      long createdEpochSeconds) {
    this(name, namespace, parents, rules, retryNonIdempotent, createdEpochSeconds, false);
  }

  /** The Gateway API kind this route was read from, for messages and logs. */
  public String kind() {
    return grpc ? "GRPCRoute" : "HTTPRoute";
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** A Service the route is attached to. */
  public record Parent(NamespacedName service, int port) {
    public boolean covers(NamespacedName svc, int servicePort) {
      return service.equals(svc) && (port == 0 || port == servicePort);
    }
  }

  /**
   * What a route is to one of its parent Services (Gateway API GEP-1426, "Namespace boundaries"):
   * the same parentRef means different things depending on who wrote it.
   */
  public enum Role {
    /**
     * The parent Service is in the route's own namespace: the Service's owner shapes its inbound
     * traffic, and the route applies to every caller (that has no consumer route of its own).
     */
    PRODUCER,
    /**
     * The parent Service is in another namespace: a caller shapes its own outbound traffic, and the
     * route applies only to callers in the route's namespace. This is what keeps one tenant from
     * redirecting, mirroring or fault-injecting another team's calls.
     */
    CONSUMER
  }

  /** This route's role toward {@code parent}: producer when both are in one namespace. */
  public Role role(Parent parent) {
    return parent.service().namespace().equals(namespace) ? Role.PRODUCER : Role.CONSUMER;
  }

  /**
   * One rule: requests matching any of {@code matches} go to one of {@code backends} (by weight).
   *
   * @param requestTimeout Gateway API {@code timeouts.request}: the whole request, retries
   *     included; null when unset
   * @param backendTimeout Gateway API {@code timeouts.backendRequest}: one try; null when unset
   * @param retry null when the rule does not retry
   * @param fault the {@code HTTPFault} an {@code ExtensionRef} filter names (same namespace as the
   *     route); null when the rule injects no fault
   * @param mirror Gateway API's {@code RequestMirror} filter; null when none
   * @param redirect Gateway API's {@code RequestRedirect} filter: the proxy answers every request
   *     of the rule with a redirect itself and the backends are not used; null when none
   */
  public record Rule(
      List<Match> matches,
      List<Backend> backends,
      HeaderModifier requestHeaders,
      HeaderModifier responseHeaders,
      @Nullable Rewrite rewrite,
      @Nullable Duration requestTimeout,
      @Nullable Duration backendTimeout,
      @Nullable Retry retry,
      @Nullable NamespacedName fault,
      @Nullable Mirror mirror,
      @Nullable Redirect redirect) {
    public Rule {
      matches = List.copyOf(matches);
      backends = List.copyOf(backends);
      Objects.requireNonNull(requestHeaders);
      Objects.requireNonNull(responseHeaders);
    }

    /** A rule without redirect. */
    public Rule(
        List<Match> matches,
        List<Backend> backends,
        HeaderModifier requestHeaders,
        HeaderModifier responseHeaders,
        @Nullable Rewrite rewrite,
        @Nullable Duration requestTimeout,
        @Nullable Duration backendTimeout,
        @Nullable Retry retry,
        @Nullable NamespacedName fault,
        @Nullable Mirror mirror) {
      this(
          matches,
          backends,
          requestHeaders,
          responseHeaders,
          rewrite,
          requestTimeout,
          backendTimeout,
          retry,
          fault,
          mirror,
          null);
    }

    /** This rule with {@code backends} instead of its own (and {@code mirror}), the rest kept. */
    public Rule withBackends(List<Backend> backends, @Nullable Mirror mirror) {
      return new Rule(
          matches,
          backends,
          requestHeaders,
          responseHeaders,
          rewrite,
          requestTimeout,
          backendTimeout,
          retry,
          fault,
          mirror,
          redirect);
    }

    /** A rule without fault and mirror. */
    public Rule(
        List<Match> matches,
        List<Backend> backends,
        HeaderModifier requestHeaders,
        HeaderModifier responseHeaders,
        @Nullable Rewrite rewrite,
        @Nullable Duration requestTimeout,
        @Nullable Duration backendTimeout,
        @Nullable Retry retry) {
      this(
          matches,
          backends,
          requestHeaders,
          responseHeaders,
          rewrite,
          requestTimeout,
          backendTimeout,
          retry,
          null,
          null,
          null);
    }
  }

  /**
   * Gateway API's RequestMirror filter: a copy of each request (of {@code percent} of them) goes to
   * {@code service:port}, its response is discarded.
   *
   * @param percent 0-100
   */
  public record Mirror(NamespacedName service, int port, int percent) {}

  /** Every condition must hold. A null method matches every method. */
  public record Match(
      TextMatch path,
      List<TextMatch> headers,
      List<TextMatch> queryParams,
      @Nullable String method) {
    public Match {
      Objects.requireNonNull(path);
      headers = List.copyOf(headers);
      queryParams = List.copyOf(queryParams);
    }

    /** Gateway API's default match: every request. */
    public static Match everything() {
      return new Match(TextMatch.pathPrefix("/"), List.of(), List.of(), null);
    }
  }

  /**
   * A Service backend; {@code weight} 0 receives no traffic.
   *
   * @param permitted false for a Service in another namespace that no {@link ReferenceGrant}
   *     allows: it keeps its weight, and requests picked for it are answered 500
   * @param requestHeaders the backendRef's own RequestHeaderModifier ({@code
   *     HTTPBackendRef.filters}), applied after the rule's when this backend is picked
   * @param responseHeaders the backendRef's own ResponseHeaderModifier, applied after the rule's to
   *     the responses of requests sent to this backend
   */
  public record Backend(
      NamespacedName service,
      int port,
      int weight,
      boolean permitted,
      HeaderModifier requestHeaders,
      HeaderModifier responseHeaders) {
    public Backend {
      Objects.requireNonNull(service);
      Objects.requireNonNull(requestHeaders);
      Objects.requireNonNull(responseHeaders);
    }

    public Backend(NamespacedName service, int port, int weight, boolean permitted) {
      this(service, port, weight, permitted, HeaderModifier.NONE, HeaderModifier.NONE);
    }

    public Backend(NamespacedName service, int port, int weight) {
      this(service, port, weight, true);
    }

    /** This backend with {@code permitted} set as given, its filters kept. */
    public Backend withPermitted(boolean ok) {
      return new Backend(service, port, weight, ok, requestHeaders, responseHeaders);
    }
  }

  /** Gateway API's RequestHeaderModifier / ResponseHeaderModifier. Names are lower case. */
  public record HeaderModifier(
      Map<String, String> set, Map<String, String> add, Set<String> remove) {
    public static final HeaderModifier NONE = new HeaderModifier(Map.of(), Map.of(), Set.of());

    public HeaderModifier {
      set = Map.copyOf(set);
      add = Map.copyOf(add);
      remove = Set.copyOf(remove);
    }

    public boolean isEmpty() {
      return set.isEmpty() && add.isEmpty() && remove.isEmpty();
    }
  }

  /**
   * Gateway API's URLRewrite filter; at most one of {@code fullPath} and {@code prefix}.
   *
   * @param prefix replaces the part of the path the rule's PathPrefix match matched
   */
  public record Rewrite(
      @Nullable String hostname, @Nullable String fullPath, @Nullable String prefix) {}

  /**
   * Gateway API's RequestRedirect filter: the proxy answers with {@code statusCode} and a {@code
   * Location} built from the request, each part replaced when set. At most one of {@code fullPath}
   * and {@code prefix}.
   *
   * @param scheme "http" or "https"; null keeps the request's (always "http" here)
   * @param hostname null keeps the request's Host (without its port)
   * @param prefix replaces the part of the path the rule's PathPrefix match matched
   * @param port 1-65535; 0 derives it: the new scheme's well-known port when the scheme is set,
   *     else the Service port the client dialled (Gateway API's "listener port"); a well-known port
   *     for its scheme (http 80, https 443) is left out of the Location
   * @param statusCode 301, 302, 303, 307 or 308
   */
  public record Redirect(
      @Nullable String scheme,
      @Nullable String hostname,
      @Nullable String fullPath,
      @Nullable String prefix,
      int port,
      int statusCode) {
    /** The status codes Gateway API allows (301 and 302 core, the others extended). */
    public static final Set<Integer> STATUS_CODES = Set.of(301, 302, 303, 307, 308);

    /** Gateway API's default status code. */
    public static final int DEFAULT_STATUS = 302;

    public Redirect {
      if (fullPath != null && prefix != null) {
        throw new IllegalArgumentException("a redirect replaces the full path or a prefix");
      }
      if (!STATUS_CODES.contains(statusCode)) {
        throw new IllegalArgumentException("redirect status " + statusCode);
      }
      if (port < 0 || port > 65535) {
        throw new IllegalArgumentException("redirect port " + port);
      }
    }
  }

  /**
   * Gateway API's HTTPRoute retry (GEP-1731).
   *
   * @param attempts retries after the first try
   * @param codes response codes that are retried; connect failures always are
   */
  public record Retry(int attempts, Set<Integer> codes, Duration backoff) {
    public Retry {
      codes = Set.copyOf(codes);
      Objects.requireNonNull(backoff);
    }
  }
}
