package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;

/**
 * Decides whether a connection may reach a workload: the receiving side's check, run once per
 * connection on the event loop. Implementations are pure over the snapshot (no I/O, no locks).
 */
@FunctionalInterface
public interface Authorizer {

  Decision check(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source);

  /**
   * The check for one HTTP request on the L7 path: L7 conditions of the policies are evaluated
   * against {@code request}. The default ignores the request (an authorizer without L7 rules).
   */
  default Decision check(
      ConfigSnapshot snapshot,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      HttpRequestInfo request) {
    return check(snapshot, destination, destinationPort, source);
  }

  /**
   * The connection-time check when every request on the connection will be checked at L7 as well
   * (the receiving side of an HBONE stream to a workload with L7 policy): conditions on methods,
   * paths and headers are left to the per-request check, so an ALLOW rule with them still counts as
   * a possible match and a DENY rule with them does not deny the whole connection. Everything else
   * (peer authentication, principals, namespaces, IP blocks, ports, L4-only rules) decides here as
   * in {@link #check(ConfigSnapshot, Workload, int, ConnectionSource)}. The default is that
   * fail-closed check (an authorizer without L7 rules loses nothing by it).
   */
  default Decision checkBeforeRequests(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source) {
    return check(snapshot, destination, destinationPort, source);
  }
}
