package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.AuthorizationPolicy.Action;
import dev.nodemesh.model.config.AuthorizationPolicy.Operation;
import dev.nodemesh.model.config.AuthorizationPolicy.Rule;
import dev.nodemesh.model.config.AuthorizationPolicy.Source;
import dev.nodemesh.model.config.Cidr;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import java.util.List;
import org.jspecify.annotations.Nullable;

/**
 * The authorizer, L4 and L7: a pure function of the snapshot's AuthorizationPolicies and
 * PeerAuthentications, the destination workload and port, and what is known of the caller. Reads
 * only the destination's namespace and the root namespace (the snapshot indexes policies by
 * namespace), allocates nothing on the allow path except the principal's string.
 *
 * <p>Order, as in Istio:
 *
 * <ol>
 *   <li>Peer authentication: the most specific PeerAuthentication decides the mode; STRICT refuses
 *       a caller without mutual TLS ({@code plaintext_strict}).
 *   <li>DENY policies selecting the destination: any matching rule denies ({@code
 *       denied_by_policy}).
 *   <li>ALLOW policies selecting the destination: none means allowed ({@code default-allow});
 *       otherwise a rule of one of them must match. When every such policy has no rules (the "allow
 *       nothing" policy, i.e. namespace or mesh-wide default-deny) the reason is {@code
 *       default_deny} naming that policy; when some had rules but none matched, {@code
 *       no_allow_match}.
 * </ol>
 */
public final class PolicyAuthorizer implements Authorizer {
  public static final String DEFAULT_ALLOW = "default-allow";
  public static final String DEFAULT_DENY = "default-deny";

  public static final String ALLOWED = "allowed";
  public static final String DENIED_BY_POLICY = "denied_by_policy";
  public static final String NO_ALLOW_MATCH = "no_allow_match";
  public static final String DEFAULT_DENY_REASON = "default_deny";
  public static final String PLAINTEXT_STRICT = "plaintext_strict";

  private static final Decision DEFAULT_ALLOWED = new Decision(true, DEFAULT_ALLOW, ALLOWED);

  @Override
  public Decision check(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source) {
    return decide(snapshot, destination, destinationPort, source, null, false);
  }

  @Override
  public Decision checkBeforeRequests(
      ConfigSnapshot snapshot, Workload destination, int destinationPort, ConnectionSource source) {
    return decide(snapshot, destination, destinationPort, source, null, true);
  }

  @Override
  public Decision check(
      ConfigSnapshot snapshot,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      HttpRequestInfo request) {
    return decide(snapshot, destination, destinationPort, source, request, false);
  }

  /**
   * @param request null at L4: an operation with L7 conditions cannot be proved, so it does not
   *     match in an ALLOW policy and does match in a DENY policy (fail closed)
   * @param deferL7 with no request, L7 conditions are left to a later per-request check: the
   *     opposite of fail closed (they may match in an ALLOW policy, never in a DENY policy), which
   *     is only sound when every request will be checked again with {@code request} set
   */
  private Decision decide(
      ConfigSnapshot snapshot,
      Workload destination,
      int destinationPort,
      ConnectionSource source,
      @Nullable HttpRequestInfo request,
      boolean deferL7) {
    PeerAuthentication peerAuthn = peerAuthentication(snapshot, destination);
    if (peerAuthn != null
        && peerAuthn.mode() == PeerAuthentication.Mode.STRICT
        && !source.mutualTls()) {
      return new Decision(false, peerAuthn.id().toString(), PLAINTEXT_STRICT);
    }
    List<AuthorizationPolicy> local = snapshot.authorizationPolicies(destination.namespace());
    List<AuthorizationPolicy> root =
        destination.namespace().equals(ConfigSnapshot.ROOT_NAMESPACE)
            ? List.of()
            : snapshot.authorizationPolicies(ConfigSnapshot.ROOT_NAMESPACE);
    if (local.isEmpty() && root.isEmpty()) {
      return DEFAULT_ALLOWED;
    }
    String principal = source.principal() == null ? null : source.principal().toString();
    Caller caller = new Caller(source, principal, request, deferL7);
    // DENY first, the root namespace's before the destination's (both deny; order only names).
    Decision denied = deny(root, destination, destinationPort, caller);
    if (denied == null) {
      denied = deny(local, destination, destinationPort, caller);
    }
    if (denied != null) {
      return denied;
    }
    AllowScan scan = new AllowScan();
    allow(root, destination, destinationPort, caller, scan);
    if (scan.allowedBy == null) {
      allow(local, destination, destinationPort, caller, scan);
    }
    if (scan.allowedBy != null) {
      return new Decision(true, scan.allowedBy.id().toString(), ALLOWED);
    }
    if (scan.firstSelecting == null) {
      return DEFAULT_ALLOWED;
    }
    return scan.anyRules
        ? new Decision(false, DEFAULT_DENY, NO_ALLOW_MATCH)
        : new Decision(false, scan.firstSelecting.id().toString(), DEFAULT_DENY_REASON);
  }

  /** The caller, with its principal rendered once for pattern matching. */
  private record Caller(
      ConnectionSource source,
      @Nullable String principal,
      @Nullable HttpRequestInfo request,
      boolean deferL7) {
    @Nullable String namespace() {
      SpiffeId id = source.principal();
      return id == null ? null : id.namespace();
    }
  }

  private static final class AllowScan {
    @Nullable AuthorizationPolicy allowedBy;
    @Nullable AuthorizationPolicy firstSelecting;
    boolean anyRules;
  }

  private static @Nullable Decision deny(
      List<AuthorizationPolicy> policies, Workload destination, int port, Caller caller) {
    for (AuthorizationPolicy p : policies) {
      if (p.action() == Action.DENY
          && p.selects(destination)
          && matches(p, port, caller, !caller.deferL7())) {
        return new Decision(false, p.id().toString(), DENIED_BY_POLICY);
      }
    }
    return null;
  }

  private static void allow(
      List<AuthorizationPolicy> policies,
      Workload destination,
      int port,
      Caller caller,
      AllowScan scan) {
    for (AuthorizationPolicy p : policies) {
      if (p.action() != Action.ALLOW || !p.selects(destination)) {
        continue;
      }
      if (scan.firstSelecting == null) {
        scan.firstSelecting = p;
      }
      scan.anyRules |= !p.rules().isEmpty();
      if (matches(p, port, caller, caller.deferL7())) {
        scan.allowedBy = p;
        return;
      }
    }
  }

  /**
   * @param unknownL7Matches what an L7 condition counts as when there is no request: true for DENY
   *     policies, false for ALLOW ones (the reverse when the L7 check is deferred)
   */
  private static boolean matches(
      AuthorizationPolicy policy, int port, Caller caller, boolean unknownL7Matches) {
    for (Rule rule : policy.rules()) {
      if (anySource(rule.from(), caller)
          && anyOperation(rule.to(), port, caller.request(), unknownL7Matches)) {
        return true;
      }
    }
    return false;
  }

  private static boolean anySource(List<Source> sources, Caller caller) {
    if (sources.isEmpty()) {
      return true;
    }
    for (Source s : sources) {
      if (source(s, caller)) {
        return true;
      }
    }
    return false;
  }

  private static boolean source(Source s, Caller caller) {
    String principal = caller.principal();
    String namespace = caller.namespace();
    if (!s.principals().isEmpty() && !anyPattern(s.principals(), principal)) {
      return false;
    }
    if (anyPattern(s.notPrincipals(), principal)) {
      return false;
    }
    if (!s.namespaces().isEmpty() && !anyPattern(s.namespaces(), namespace)) {
      return false;
    }
    if (anyPattern(s.notNamespaces(), namespace)) {
      return false;
    }
    if (!s.ipBlocks().isEmpty() && !anyBlock(s.ipBlocks(), caller)) {
      return false;
    }
    return !anyBlock(s.notIpBlocks(), caller);
  }

  private static boolean anyBlock(List<Cidr> blocks, Caller caller) {
    for (Cidr c : blocks) {
      if (c.contains(caller.source().address())) {
        return true;
      }
    }
    return false;
  }

  private static boolean anyOperation(
      List<Operation> operations,
      int port,
      @Nullable HttpRequestInfo request,
      boolean unknownL7Matches) {
    if (operations.isEmpty()) {
      return true;
    }
    for (Operation op : operations) {
      if ((op.ports().isEmpty() || op.ports().contains(port))
          && !op.notPorts().contains(port)
          && (!op.hasL7() || (request == null ? unknownL7Matches : l7(op, request)))) {
        return true;
      }
    }
    return false;
  }

  /** The operation's L7 conditions against one request: every non-empty field must hold. */
  private static boolean l7(Operation op, HttpRequestInfo request) {
    if (!op.methods().isEmpty() && !op.methods().contains(request.method())) {
      return false;
    }
    if (op.notMethods().contains(request.method())) {
      return false;
    }
    if (!op.paths().isEmpty() && !anyPattern(op.paths(), request.path())) {
      return false;
    }
    if (anyPattern(op.notPaths(), request.path())) {
      return false;
    }
    for (var h : op.headers().entrySet()) {
      String value = request.header().apply(h.getKey());
      if (value == null || !pattern(h.getValue(), value)) {
        return false;
      }
    }
    return true;
  }

  /** True when {@code value} matches one of the patterns; a null value (no identity) never does. */
  static boolean anyPattern(List<String> patterns, @Nullable String value) {
    if (value == null) {
      return false;
    }
    for (String p : patterns) {
      if (pattern(p, value)) {
        return true;
      }
    }
    return false;
  }

  /** Exact, {@code *}, {@code prefix*} or {@code *suffix} (the parser allows nothing else). */
  static boolean pattern(String pattern, String value) {
    if (pattern.equals("*")) {
      return true;
    }
    if (pattern.endsWith("*")) {
      return value.startsWith(pattern.substring(0, pattern.length() - 1));
    }
    if (pattern.startsWith("*")) {
      return value.endsWith(pattern.substring(1));
    }
    return pattern.equals(value);
  }

  /**
   * The PeerAuthentication in force for {@code workload} ({@link
   * ConfigSnapshot#peerAuthenticationFor}).
   */
  public static @Nullable PeerAuthentication peerAuthentication(
      ConfigSnapshot snapshot, Workload workload) {
    return snapshot.peerAuthenticationFor(workload);
  }
}
