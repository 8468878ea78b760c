package dev.nodemesh.model.config;

import java.util.Comparator;

/**
 * One (route, rule, match) of the HTTPRoutes attached to a Service, the unit the L7 router tries in
 * order. The snapshot keeps each group of a Service's entries (producer routes; each namespace's
 * consumer routes: {@link ServiceRoutes}) sorted by {@link #PRECEDENCE}, so routing takes the first
 * entry of the caller's group that matches.
 *
 * @param port the Service port the route's parentRef names, 0 for every port
 * @param role what the route is to the parent Service this entry was made for
 */
public record HttpRouteEntry(
    HttpRoute route,
    int port,
    int ruleIndex,
    HttpRoute.Rule rule,
    HttpRoute.Match match,
    HttpRoute.Role role) {

  public HttpRouteEntry {
    java.util.Objects.requireNonNull(role, "role");
  }

  /** An entry of a producer route (the route is in its parent Service's namespace). */
  public HttpRouteEntry(
      HttpRoute route, int port, int ruleIndex, HttpRoute.Rule rule, HttpRoute.Match match) {
    this(route, port, ruleIndex, rule, match, HttpRoute.Role.PRODUCER);
  }

  /**
   * Gateway API's order across every rule of every route of a parent: an Exact path first, then the
   * longest PathPrefix (regular expressions after both, an implementation-specific choice), then a
   * match with a method, then more header matches, then more query matches; then the older route,
   * then the route's namespace/name, then rule and match order within the route.
   */
  public static final Comparator<HttpRouteEntry> PRECEDENCE =
      Comparator.comparingInt((HttpRouteEntry e) -> pathRank(e.match().path()))
          .thenComparingInt(e -> -e.match().path().value().length())
          .thenComparingInt(e -> e.match().method() == null ? 1 : 0)
          .thenComparingInt(e -> -e.match().headers().size())
          .thenComparingInt(e -> -e.match().queryParams().size())
          .thenComparingLong(e -> e.route().createdEpochSeconds())
          .thenComparing(e -> e.route().namespace())
          .thenComparing(e -> e.route().name())
          .thenComparingInt(HttpRouteEntry::ruleIndex)
          .thenComparingInt(e -> e.rule().matches().indexOf(e.match()));

  private static int pathRank(TextMatch path) {
    return switch (path.kind()) {
      case EXACT -> 0;
      case PATH_PREFIX -> 1;
      case REGULAR_EXPRESSION -> 2;
    };
  }
}
