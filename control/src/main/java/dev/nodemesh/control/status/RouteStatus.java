package dev.nodemesh.control.status;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.ReferenceGrant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The {@code status.parents} an HTTPRoute or GRPCRoute should have, as a pure function of the
 * route, what the proxy's parser said about it, the Services that exist, and the status it has now.
 *
 * <p>Only parentRefs to a Service (GAMMA: {@code group: ""}, {@code kind: Service}) are this
 * controller's; every parent entry of another controller is kept as it is, in place, and a route
 * with no Service parent gets no entry from us. Each of our entries has two conditions, as the
 * Gateway API defines them:
 *
 * <ul>
 *   <li>{@code Accepted}: True when the route was applied, its message saying to whom (GEP-1426: a
 *       producer route, parent in the route's own namespace, for every caller without consumer
 *       routes of its own; a consumer route, parent in another namespace, only for calls from the
 *       route's namespace); False/{@code UnsupportedValue} with the parser's reasons when it was
 *       refused (invalid regex, non-Service backend, ...: the last accepted version, if any, stays
 *       in effect); False/{@code NoMatchingParent} when the parent Service does not exist or has no
 *       such port; False/{@value #CONFLICTED} for an HTTPRoute parentRef whose every port a
 *       GRPCRoute of the same group (same route namespace, same Service) covers, since on one
 *       Service port a GRPCRoute wins over an HTTPRoute (GEP-1426 "Route types"; Gateway API names
 *       the reason {@code RouteReasonConflicted} without a standard value, {@code Conflicted} is
 *       what its Go constants' pattern gives). An HTTPRoute on every port that loses only some
 *       ports stays Accepted and its message names them.
 *   <li>{@code ResolvedRefs}: True when every backendRef (and RequestMirror backendRef) names a
 *       Service that exists and may be used; False/{@code InvalidKind} for a backend that is not a
 *       Service; False/{@code RefNotPermitted} for a Service in another namespace that no
 *       ReferenceGrant there permits ({@link ReferenceGrant#permits}, the check the mesh routes by:
 *       requests picked for it are answered 500, a mirror to it is not sent); False/{@code
 *       BackendNotFound} for a Service that does not exist. With several, the reason is the first
 *       of these that applies, and the message names every problem.
 * </ul>
 *
 * <p>A condition keeps its {@code lastTransitionTime} while its status stays the same (as
 * Kubernetes' {@code meta.SetStatusCondition} does), so recomputing an unchanged route gives
 * exactly the status it has and the writer has nothing to write.
 *
 * <p>Limits: a parentRef's {@code sectionName} is not looked at. A parentRef to a Service in
 * another namespace needs no ReferenceGrant (GAMMA's producer/consumer routes). Conflicts are
 * judged against the GRPCRoutes that parse now; one refused by the parser (whose previous version a
 * proxy may still hold) does not count.
 */
public final class RouteStatus {
  /** The Accepted=False reason of an HTTPRoute parentRef a GRPCRoute takes over. */
  public static final String CONFLICTED = "Conflicted";

  /** This control plane's {@code controllerName} in route status. */
  public static final String CONTROLLER = "nodemesh.dev/control";

  /** The Kubernetes limit on a condition message. */
  static final int MAX_MESSAGE = 32_768;

  private static final JsonNodeFactory JSON = JsonNodeFactory.instance;

  private RouteStatus() {}

  /** The Services that exist: their ports, or null when there is no such Service. */
  @FunctionalInterface
  public interface Services {
    @Nullable Set<Integer> ports(String namespace, String name);
  }

  private record Condition(String type, boolean status, String reason, String message) {}

  /** {@link #parents(JsonNode, List, Services, Collection, String, String)} with no grants. */
  public static ArrayNode parents(
      JsonNode route, List<String> errors, Services services, String now, String controller) {
    return parents(route, errors, services, List.of(), now, controller);
  }

  /**
   * {@link #parents(JsonNode, List, Services, Collection, Collection, String, String)} with no
   * GRPCRoutes.
   */
  public static ArrayNode parents(
      JsonNode route,
      List<String> errors,
      Services services,
      Collection<ReferenceGrant> grants,
      String now,
      String controller) {
    return parents(route, errors, services, grants, List.of(), now, controller);
  }

  /**
   * @param route the route object as a JSON tree (kind, metadata, spec, status)
   * @param errors what the proxy's parser refused the route for; empty when it was applied
   * @param grants every valid ReferenceGrant
   * @param grpcRoutes every GRPCRoute that parses: an HTTPRoute on the same Service port in the
   *     same group loses to them
   * @param now RFC 3339 time for a condition whose status changes
   * @return the complete {@code status.parents} array the route should have
   */
  public static ArrayNode parents(
      JsonNode route,
      List<String> errors,
      Services services,
      Collection<ReferenceGrant> grants,
      Collection<HttpRoute> grpcRoutes,
      String now,
      String controller) {
    JsonNode meta = route.path("metadata");
    String namespace = meta.path("namespace").asText("default");
    long generation = meta.path("generation").asLong(0);
    JsonNode current = route.path("status").path("parents");
    ArrayNode out = JSON.arrayNode();
    for (JsonNode entry : current) {
      if (!controller.equals(entry.path("controllerName").asText())) {
        out.add(entry.deepCopy());
      }
    }
    String kind = route.path("kind").asText("HTTPRoute");
    // A backendRef to one of the route's own parent Services needs no grant (ReferenceGrant
    // permits it the same way for the proxies).
    Set<NamespacedName> parentServices = new HashSet<>();
    for (JsonNode ref : route.path("spec").path("parentRefs")) {
      if (isService(ref)) {
        parentServices.add(
            new NamespacedName(ref.path("namespace").asText(namespace), ref.path("name").asText()));
      }
    }
    Condition resolved =
        resolvedRefs(
            route.path("spec"), new Refs(kind, namespace, parentServices, services, grants));
    // GEP-1426 route types: only an HTTPRoute can lose a port, to a GRPCRoute.
    List<HttpRoute> rivals = kind.equals("GRPCRoute") ? List.of() : sorted(grpcRoutes);
    List<JsonNode> seen = new ArrayList<>();
    for (JsonNode ref : route.path("spec").path("parentRefs")) {
      if (!isService(ref) || seen.contains(ref)) {
        continue;
      }
      seen.add(ref);
      JsonNode old = ours(current, ref, controller);
      ObjectNode entry = JSON.objectNode();
      entry.set("parentRef", ref.deepCopy());
      entry.put("controllerName", controller);
      ArrayNode conditions = entry.putArray("conditions");
      conditions.add(
          condition(accepted(ref, namespace, errors, services, rivals), old, generation, now));
      conditions.add(condition(resolved, old, generation, now));
      out.add(entry);
    }
    return out;
  }

  /** Gateway API defaults a parentRef to a Gateway: only an explicit core Service is ours. */
  static boolean isService(JsonNode ref) {
    String group = ref.path("group").asText("");
    return "Service".equals(ref.path("kind").asText()) && (group.isEmpty() || group.equals("core"));
  }

  private static @Nullable JsonNode ours(JsonNode current, JsonNode ref, String controller) {
    for (JsonNode entry : current) {
      if (controller.equals(entry.path("controllerName").asText())
          && ref.equals(entry.path("parentRef"))) {
        return entry;
      }
    }
    return null;
  }

  private static List<HttpRoute> sorted(Collection<HttpRoute> routes) {
    // By name, so the message (and so the status) is the same whatever order the cache lists.
    List<HttpRoute> out = new ArrayList<>();
    for (HttpRoute r : routes) {
      if (r.grpc()) {
        out.add(r);
      }
    }
    out.sort(java.util.Comparator.comparing(HttpRoute::namespace).thenComparing(HttpRoute::name));
    return out;
  }

  private static Condition accepted(
      JsonNode ref,
      String namespace,
      List<String> errors,
      Services services,
      List<HttpRoute> grpcRoutes) {
    if (!errors.isEmpty()) {
      return new Condition(
          "Accepted",
          false,
          "UnsupportedValue",
          "not applied (a previously accepted version, if any, stays in effect): "
              + String.join("; ", errors));
    }
    String ns = ref.path("namespace").asText(namespace);
    String name = ref.path("name").asText();
    Set<Integer> ports = services.ports(ns, name);
    if (ports == null) {
      return new Condition(
          "Accepted", false, "NoMatchingParent", "Service " + ns + "/" + name + " does not exist");
    }
    if (ref.has("port") && !ports.contains(ref.path("port").asInt())) {
      return new Condition(
          "Accepted",
          false,
          "NoMatchingParent",
          "Service " + ns + "/" + name + " has no port " + ref.path("port").asInt());
    }
    int port = ref.has("port") ? ref.path("port").asInt() : 0;
    NamespacedName service = new NamespacedName(ns, name);
    // Same group: the GRPCRoute is in this route's namespace and names the same Service (so both
    // are producer routes, or both consumer routes of one namespace).
    List<String> whole = new ArrayList<>();
    java.util.Set<Integer> lostPorts = new java.util.TreeSet<>();
    for (HttpRoute g : grpcRoutes) {
      if (!g.namespace().equals(namespace)) {
        continue;
      }
      for (HttpRoute.Parent p : g.parents()) {
        if (!p.service().equals(service)) {
          continue;
        }
        if (p.port() == 0 || p.port() == port) {
          whole.add(
              "GRPCRoute " + g.id() + (p.port() == 0 ? " (every port)" : " (port " + port + ")"));
        } else if (port == 0) {
          lostPorts.add(p.port());
        }
      }
    }
    if (!whole.isEmpty()) {
      return new Condition(
          "Accepted",
          false,
          CONFLICTED,
          "not applied: "
              + String.join(", ", whole)
              + " is attached to Service "
              + service
              + " too, and on one Service port a GRPCRoute wins over an HTTPRoute (GEP-1426)");
    }
    String to =
        namespace.equals(ns)
            ? "producer route: attached to Service "
                + service
                + " for calls from every namespace that has no consumer route of its own on it"
            : "consumer route: attached to Service "
                + service
                + " for calls from namespace "
                + namespace
                + " only";
    if (!lostPorts.isEmpty()) {
      to += "; not on port(s) " + lostPorts + ", which a GRPCRoute of " + namespace + " takes";
    }
    return new Condition("Accepted", true, "Accepted", to);
  }

  /** What a backendRef is checked against, and the problems found so far. */
  private record Refs(
      String routeKind,
      String namespace,
      Set<NamespacedName> parentServices,
      Services services,
      Collection<ReferenceGrant> grants,
      List<String> invalidKind,
      List<String> notPermitted,
      List<String> notFound) {
    Refs(
        String routeKind,
        String namespace,
        Set<NamespacedName> parentServices,
        Services services,
        Collection<ReferenceGrant> grants) {
      this(
          routeKind,
          namespace,
          parentServices,
          services,
          grants,
          new ArrayList<>(),
          new ArrayList<>(),
          new ArrayList<>());
    }
  }

  private static Condition resolvedRefs(JsonNode spec, Refs refs) {
    JsonNode rules = spec.path("rules");
    for (int i = 0; i < rules.size(); i++) {
      String path = "spec.rules[" + i + "]";
      JsonNode backendRefs = rules.get(i).path("backendRefs");
      for (int j = 0; j < backendRefs.size(); j++) {
        backend(backendRefs.get(j), path + ".backendRefs[" + j + "]", refs);
      }
      JsonNode filters = rules.get(i).path("filters");
      for (int j = 0; j < filters.size(); j++) {
        JsonNode mirror = filters.get(j).path("requestMirror").path("backendRef");
        if (mirror.isObject()) {
          backend(mirror, path + ".filters[" + j + "].requestMirror.backendRef", refs);
        }
      }
    }
    List<String> problems = new ArrayList<>(refs.invalidKind());
    problems.addAll(refs.notPermitted());
    problems.addAll(refs.notFound());
    if (problems.isEmpty()) {
      return new Condition("ResolvedRefs", true, "ResolvedRefs", "all backendRefs resolved");
    }
    String reason =
        !refs.invalidKind().isEmpty()
            ? "InvalidKind"
            : !refs.notPermitted().isEmpty() ? "RefNotPermitted" : "BackendNotFound";
    return new Condition("ResolvedRefs", false, reason, String.join("; ", problems));
  }

  private static void backend(JsonNode ref, String path, Refs refs) {
    String group = ref.path("group").asText("");
    String kind = ref.path("kind").asText("Service");
    if (!kind.equals("Service") || !(group.isEmpty() || group.equals("core"))) {
      refs.invalidKind()
          .add(path + ": " + (group.isEmpty() ? "" : group + "/") + kind + " is not a Service");
      return;
    }
    String ns = ref.path("namespace").asText(refs.namespace());
    String name = ref.path("name").asText();
    // Permission first, so a route cannot learn whether a Service it may not use exists.
    NamespacedName service = new NamespacedName(ns, name);
    if (!refs.parentServices().contains(service)
        && !ReferenceGrant.permits(refs.grants(), refs.routeKind(), refs.namespace(), service)) {
      refs.notPermitted()
          .add(
              path
                  + ": Service "
                  + ns
                  + "/"
                  + name
                  + " is in another namespace and no ReferenceGrant in "
                  + ns
                  + " permits "
                  + refs.routeKind()
                  + "s from "
                  + refs.namespace()
                  + " to use it");
      return;
    }
    if (refs.services().ports(ns, name) == null) {
      refs.notFound().add(path + ": Service " + ns + "/" + name + " does not exist");
    }
  }

  private static ObjectNode condition(
      Condition c, @Nullable JsonNode oldEntry, long generation, String now) {
    String status = c.status() ? "True" : "False";
    String since = now;
    if (oldEntry != null) {
      for (JsonNode old : oldEntry.path("conditions")) {
        if (c.type().equals(old.path("type").asText())
            && status.equals(old.path("status").asText())
            && old.hasNonNull("lastTransitionTime")) {
          since = old.path("lastTransitionTime").asText();
        }
      }
    }
    ObjectNode n = JSON.objectNode();
    n.put("type", c.type());
    n.put("status", status);
    n.put("reason", c.reason());
    String message = c.message();
    n.put(
        "message",
        message.length() > MAX_MESSAGE ? message.substring(0, MAX_MESSAGE - 3) + "..." : message);
    // An int when it fits, as a parsed API response has it: IntNode(1) does not equal LongNode(1).
    if (generation == (int) generation) {
      n.put("observedGeneration", (int) generation);
    } else {
      n.put("observedGeneration", generation);
    }
    n.put("lastTransitionTime", since);
    return n;
  }
}
