package dev.nodemesh.model.config;

import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * An L4 authorization policy ({@code security.nodemesh.dev/v1alpha1 AuthorizationPolicy}), shaped
 * like Istio's. It applies to the workloads its selector picks in its namespace (an empty selector:
 * all of them); in the root namespace {@link ConfigSnapshot#ROOT_NAMESPACE} it applies to matching
 * workloads of every namespace.
 *
 * <p>Semantics (evaluated by {@code dev.nodemesh.proxy.authz.PolicyAuthorizer}): a rule matches
 * when one of its {@code from} sources and one of its {@code to} operations match (an empty list
 * matches anything); a policy matches when one of its rules does. An ALLOW policy with no rules
 * allows nothing, which is how a namespace (or, in the root namespace, the whole mesh) is switched
 * to default-deny; a DENY policy with no rules denies nothing.
 *
 * @param selector matchLabels; empty selects every workload in scope
 */
public record AuthorizationPolicy(
    String name, String namespace, Map<String, String> selector, Action action, List<Rule> rules) {

  public enum Action {
    ALLOW,
    DENY
  }

  public AuthorizationPolicy {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
    selector = Map.copyOf(selector);
    Objects.requireNonNull(action, "action");
    rules = List.copyOf(rules);
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** True when this policy applies to {@code workload} (namespace scope and selector). */
  public boolean selects(Workload workload) {
    if (!namespace.equals(workload.namespace())
        && !namespace.equals(ConfigSnapshot.ROOT_NAMESPACE)) {
      return false;
    }
    return workload.labels().entrySet().containsAll(selector.entrySet());
  }

  /**
   * One rule: {@code from} sources OR'ed, {@code to} operations OR'ed, the two AND'ed; an empty
   * list matches every connection.
   */
  public record Rule(List<Source> from, List<Operation> to) {
    public Rule {
      from = List.copyOf(from);
      to = List.copyOf(to);
    }
  }

  /**
   * Who may connect. Every non-empty field must match (AND); within a field any entry may (OR); a
   * {@code not} field matches when none of its entries does. Principals are SPIFFE IDs with an
   * optional {@code *} at the start or end ({@code spiffe://td/ns/x/*}, {@code *}/sa/foo, {@code
   * *}); a plaintext caller has no principal and no namespace, so it matches no principal or
   * namespace entry (and every {@code not} one).
   */
  public record Source(
      List<String> principals,
      List<String> notPrincipals,
      List<String> namespaces,
      List<String> notNamespaces,
      List<Cidr> ipBlocks,
      List<Cidr> notIpBlocks) {
    public Source {
      principals = List.copyOf(principals);
      notPrincipals = List.copyOf(notPrincipals);
      namespaces = List.copyOf(namespaces);
      notNamespaces = List.copyOf(notNamespaces);
      ipBlocks = List.copyOf(ipBlocks);
      notIpBlocks = List.copyOf(notIpBlocks);
    }
  }

  /**
   * Which requests: destination ports (the workload's own port, as dialled or resolved from a
   * Service) and, at L7, methods, paths and headers. Every non-empty field must match. Paths and
   * header values are exact, {@code prefix*}, {@code *suffix} or {@code *}; methods are exact.
   * Header names are lower case; each listed header must be present and match its pattern.
   *
   * <p>Where no HTTP request is known (an L4 connection), an operation with L7 fields cannot be
   * proved: the authorizer treats it as not matching in an ALLOW policy and as matching in a DENY
   * policy (fail closed).
   */
  public record Operation(
      List<Integer> ports,
      List<Integer> notPorts,
      List<String> methods,
      List<String> notMethods,
      List<String> paths,
      List<String> notPaths,
      Map<String, String> headers) {
    public Operation {
      ports = List.copyOf(ports);
      notPorts = List.copyOf(notPorts);
      methods = List.copyOf(methods);
      notMethods = List.copyOf(notMethods);
      paths = List.copyOf(paths);
      notPaths = List.copyOf(notPaths);
      headers = Map.copyOf(headers);
    }

    /** An L4-only operation. */
    public Operation(List<Integer> ports, List<Integer> notPorts) {
      this(ports, notPorts, List.of(), List.of(), List.of(), List.of(), Map.of());
    }

    /** True when the operation says something about the HTTP request. */
    public boolean hasL7() {
      return !methods.isEmpty()
          || !notMethods.isEmpty()
          || !paths.isEmpty()
          || !notPaths.isEmpty()
          || !headers.isEmpty();
    }
  }

  /** True when some rule of this policy has an L7 condition (so L7 must see the requests). */
  public boolean hasL7Rules() {
    for (Rule r : rules) {
      for (Operation op : r.to()) {
        if (op.hasL7()) {
          return true;
        }
      }
    }
    return false;
  }
}
