package dev.nodemesh.model.config;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * A Gateway API {@code ReferenceGrant} (v1beta1), reduced to what a route's backendRef needs: which
 * route kinds in which namespaces may refer to which Services in the grant's own namespace.
 *
 * <p>{@link #permits} is the one check for a cross-namespace backendRef, used by the local loader,
 * the control plane (before it pushes a route) and route status, so the three agree. A reference in
 * the route's own namespace needs no grant, nor does one to the route's own parent Service.
 *
 * @param namespace the grant's namespace: the one the referred-to Services are in
 * @param from the route kinds (HTTPRoute, GRPCRoute) and namespaces allowed to refer
 * @param to the Services they may refer to; a null name is every Service of the namespace
 */
public record ReferenceGrant(String namespace, String name, List<From> from, List<To> to) {
  public static final String GATEWAY_GROUP = "gateway.networking.k8s.io";

  public ReferenceGrant {
    Objects.requireNonNull(namespace, "namespace");
    Objects.requireNonNull(name, "name");
    from = List.copyOf(from);
    to = List.copyOf(to);
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** A {@code spec.from} entry (any kind; only HTTPRoute and GRPCRoute matter to the mesh). */
  public record From(String group, String kind, String namespace) {}

  /** A {@code spec.to} entry (any kind; only core Services matter). {@code name} null: all. */
  public record To(String group, String kind, @Nullable String name) {}

  /**
   * True when a route of {@code routeKind} in {@code routeNamespace} may send to {@code service}:
   * the same namespace, or a grant in the Service's namespace whose {@code from} names the route's
   * kind and namespace and whose {@code to} names the Service (or every Service).
   */
  public static boolean permits(
      Collection<ReferenceGrant> grants,
      String routeKind,
      String routeNamespace,
      NamespacedName service) {
    if (routeNamespace.equals(service.namespace())) {
      return true;
    }
    for (ReferenceGrant g : grants) {
      if (!g.namespace().equals(service.namespace())) {
        continue;
      }
      boolean fromOk = false;
      for (From f : g.from()) {
        if (GATEWAY_GROUP.equals(f.group())
            && routeKind.equals(f.kind())
            && routeNamespace.equals(f.namespace())) {
          fromOk = true;
          break;
        }
      }
      if (!fromOk) {
        continue;
      }
      for (To t : g.to()) {
        String name = t.name();
        if ((t.group().isEmpty() || t.group().equals("core"))
            && "Service".equals(t.kind())
            && (name == null || name.equals(service.name()))) {
          return true;
        }
      }
    }
    return false;
  }

  /**
   * As {@link #permits(Collection, String, String, NamespacedName)} for a backendRef of {@code
   * route}, and also true for a Service the route is attached to (one of its parentRefs): a
   * consumer route that sends its namespace's calls on to the Service they dialled reaches nothing
   * those callers could not reach without it, so it needs no grant (GEP-1294: mesh routes augment
   * Services; the conformance test MeshConsumerRoute has no ReferenceGrant). Any other Service in
   * another namespace still needs one.
   */
  public static boolean permits(
      Collection<ReferenceGrant> grants, HttpRoute route, NamespacedName service) {
    for (HttpRoute.Parent p : route.parents()) {
      if (p.service().equals(service)) {
        return true;
      }
    }
    return permits(grants, route.kind(), route.namespace(), service);
  }

  /**
   * The route with every backendRef the grants do not permit marked (it keeps its weight, and the
   * requests it is picked for are answered 500, as Gateway API asks) and every RequestMirror to a
   * Service not permitted dropped (no copies are sent). The route itself when nothing changes.
   */
  public static HttpRoute apply(HttpRoute route, Collection<ReferenceGrant> grants) {
    boolean changed = false;
    List<HttpRoute.Rule> rules = new ArrayList<>();
    for (HttpRoute.Rule r : route.rules()) {
      List<HttpRoute.Backend> backends = new ArrayList<>();
      boolean ruleChanged = false;
      for (HttpRoute.Backend b : r.backends()) {
        boolean ok = permits(grants, route, b.service());
        if (ok != b.permitted()) {
          ruleChanged = true;
          backends.add(b.withPermitted(ok));
        } else {
          backends.add(b);
        }
      }
      HttpRoute.Mirror mirror = r.mirror();
      if (mirror != null && !permits(grants, route, mirror.service())) {
        mirror = null;
        ruleChanged = true;
      }
      if (ruleChanged) {
        changed = true;
        rules.add(r.withBackends(backends, mirror));
      } else {
        rules.add(r);
      }
    }
    if (!changed) {
      return route;
    }
    return new HttpRoute(
        route.name(),
        route.namespace(),
        route.parents(),
        rules,
        route.retryNonIdempotent(),
        route.createdEpochSeconds(),
        route.grpc());
  }

  /** {@link #apply} to each route. */
  public static List<HttpRoute> applyAll(
      Collection<HttpRoute> routes, Collection<ReferenceGrant> grants) {
    List<HttpRoute> out = new ArrayList<>(routes.size());
    routes.forEach(r -> out.add(apply(r, grants)));
    return out;
  }
}
