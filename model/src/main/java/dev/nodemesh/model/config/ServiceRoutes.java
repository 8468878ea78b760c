package dev.nodemesh.model.config;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * The HTTPRoute and GRPCRoute entries attached to one Service, grouped the way Gateway API's mesh
 * rules (GEP-1426, "Namespace boundaries" and "Multiple routes for a Service") decide who they
 * apply to:
 *
 * <ul>
 *   <li>the <b>producer</b> group: routes in the Service's own namespace, for every caller;
 *   <li>one <b>consumer</b> group per namespace: routes in that namespace whose parentRef names
 *       this Service in another namespace, only for callers in that namespace. A caller whose
 *       namespace has consumer routes on the port it calls uses those and no producer route; every
 *       other caller uses the producer group.
 * </ul>
 *
 * <p>Routes merge only within their group, in {@link HttpRouteEntry#PRECEDENCE} (match specificity,
 * then the older route, then namespace/name). Within a group, when a GRPCRoute and an HTTPRoute
 * both cover a port, only the GRPCRoutes apply there (GEP-1426, "Route types"); the control plane
 * reports the HTTPRoute as not accepted ({@code Conflicted}).
 *
 * <p>Everything is computed once when the snapshot is built: {@link #select} is a hash probe or two
 * and allocates nothing, so it can run per request. Limits: a consumer group takes over per Service
 * port, so a consumer route on port 80 leaves the caller's calls to port 8080 under the producer
 * routes.
 */
public final class ServiceRoutes {
  static final ServiceRoutes NONE = new ServiceRoutes(List.of());

  private final List<HttpRouteEntry> all;
  private final Group producers;
  private final Map<String, Group> consumers;

  /**
   * @param entries every entry attached to the Service, any group, in precedence order
   */
  ServiceRoutes(List<HttpRouteEntry> entries) {
    this.all = List.copyOf(entries);
    List<HttpRouteEntry> producer = new ArrayList<>();
    Map<String, List<HttpRouteEntry>> byNamespace = new HashMap<>();
    for (HttpRouteEntry e : all) {
      if (e.role() == HttpRoute.Role.PRODUCER) {
        producer.add(e);
      } else {
        byNamespace.computeIfAbsent(e.route().namespace(), ns -> new ArrayList<>()).add(e);
      }
    }
    this.producers = new Group(producer);
    Map<String, Group> groups = new HashMap<>();
    byNamespace.forEach((ns, list) -> groups.put(ns, new Group(list)));
    this.consumers = Map.copyOf(groups);
  }

  /** Every entry of every group, in precedence order (for dumps and checks, not for routing). */
  public List<HttpRouteEntry> all() {
    return all;
  }

  /**
   * The entries that apply to a call from a workload in {@code callerNamespace} to {@code port}, in
   * precedence order: that namespace's consumer routes when any covers the port, else the producer
   * routes. Every entry returned covers the port. Empty: no route applies (the Service itself).
   */
  public List<HttpRouteEntry> select(String callerNamespace, int port) {
    Group own = consumers.get(callerNamespace);
    if (own != null) {
      List<HttpRouteEntry> entries = own.forPort(port);
      if (!entries.isEmpty()) {
        return entries;
      }
    }
    return producers.forPort(port);
  }

  /** One group's entries, resolved per port once. */
  private static final class Group {
    // Ports some entry names; every other port sees only the entries for every port.
    private final Map<Integer, List<HttpRouteEntry>> byPort;
    private final List<HttpRouteEntry> otherPorts;

    Group(List<HttpRouteEntry> sorted) {
      TreeSet<Integer> named = new TreeSet<>();
      List<HttpRouteEntry> everyPort = new ArrayList<>();
      for (HttpRouteEntry e : sorted) {
        if (e.port() == 0) {
          everyPort.add(e);
        } else {
          named.add(e.port());
        }
      }
      this.otherPorts = resolve(everyPort);
      Map<Integer, List<HttpRouteEntry>> ports = new HashMap<>();
      for (int port : named) {
        List<HttpRouteEntry> covering = new ArrayList<>();
        for (HttpRouteEntry e : sorted) {
          if (e.port() == 0 || e.port() == port) {
            covering.add(e);
          }
        }
        ports.put(port, resolve(covering));
      }
      this.byPort = Map.copyOf(ports);
    }

    List<HttpRouteEntry> forPort(int port) {
      List<HttpRouteEntry> l = byPort.get(port);
      return l != null ? l : otherPorts;
    }

    /** GEP-1426 "Route types": on one Service port a GRPCRoute wins over an HTTPRoute. */
    private static List<HttpRouteEntry> resolve(List<HttpRouteEntry> covering) {
      boolean grpc = false;
      for (HttpRouteEntry e : covering) {
        grpc |= e.route().grpc();
      }
      if (!grpc) {
        return List.copyOf(covering);
      }
      List<HttpRouteEntry> out = new ArrayList<>();
      for (HttpRouteEntry e : covering) {
        if (e.route().grpc()) {
          out.add(e);
        }
      }
      return List.copyOf(out);
    }
  }
}
