package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;

/**
 * Refuses every connection to a pod on this node while no config is in force (snapshot version 0:
 * nothing loaded from the node's saved snapshot and nothing from the control plane yet), and asks
 * {@code delegate} otherwise. No config means no policy known, not "allow everything": a STRICT
 * PeerAuthentication or a DENY policy the proxy has not heard of yet must not be bypassed. The
 * denial reason is {@value #REASON}, counted in {@code nodemesh_policy_denials_total} like any
 * other.
 *
 * <p>Limits: it guards what reaches a pod on this node (inbound capture, HBONE, same-node delivery
 * and per-request L7 checks); outbound connections to destinations outside the mesh are not
 * authorized here and pass as before.
 */
public final class FailClosedAuthorizer implements Authorizer {
  public static final String REASON = "no_config";
  public static final String POLICY = "no-config";
  private static final Decision REFUSED = new Decision(false, POLICY, REASON);

  private final Authorizer delegate;

  public FailClosedAuthorizer(Authorizer delegate) {
    this.delegate = delegate;
  }

  @Override
  public Decision check(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source) {
    return snapshot.version() == 0
        ? REFUSED
        : delegate.check(snapshot, destination, destinationPort, source);
  }

  @Override
  public Decision check(
      ConfigSnapshot snapshot,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      HttpRequestInfo request) {
    return snapshot.version() == 0
        ? REFUSED
        : delegate.check(snapshot, destination, destinationPort, source, request);
  }

  /**
   * Passed on too: the HBONE server asks this of a stream that carries HTTP, and the interface's
   * default (the fail-closed connection check) would refuse every cross-node request that an L7
   * rule allows.
   */
  @Override
  public Decision checkBeforeRequests(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source) {
    return snapshot.version() == 0
        ? REFUSED
        : delegate.checkBeforeRequests(snapshot, destination, destinationPort, source);
  }
}
