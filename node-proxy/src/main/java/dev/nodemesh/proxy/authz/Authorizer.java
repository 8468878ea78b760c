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
}
