package dev.nodemesh.proxy.accesslog;

/**
 * Why a connection ended other than by both sides closing cleanly, as short codes in the access
 * log's {@code response_flags} (Envoy's spelling where one exists, so operators read them the same
 * way). A connection with none logs {@code "-"}.
 */
public enum ResponseFlag {
  /**
   * No route: the proxy refused the connection itself (a service with no endpoints or no such port,
   * an inbound connection not aimed at the pod's app, no original destination).
   */
  NR,
  /** Upstream connect failure: refused, unreachable or timed out. */
  UF,
  /**
   * Upstream reset: the upstream side failed (reset, I/O error) after it was connected. On an L7
   * line whose status is not 502 the response had started: it was broken off after its head.
   */
  UR,
  /**
   * Downstream reset: the client side failed, or went away before the upstream was connected (L7:
   * or while its response was being sent).
   */
  DR,
  /** Denied by authorization policy (set by the authorization path). */
  DENY,
  /**
   * L7: the upstream did not answer within the route's timeout (504), or a response that had
   * started was broken off when the timeout ran out (logged with the status it started with).
   */
  UT,
  /** L7: the request was malformed or too large (400, 414, 431): a downstream protocol error. */
  DPE,
  /** L7: upstream overflow, a TrafficPolicy circuit breaker refused the request (503). */
  UO,
  /** L7: rate limited by a TrafficPolicy's local rate limit (429). */
  RL,
  /** L7: the request was delayed by an injected fault (HTTPFault delay). */
  DI,
  /** L7: the request was aborted by an injected fault (HTTPFault abort). */
  FI
}
