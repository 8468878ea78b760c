package dev.nodemesh.proxy.admin;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ServicePort;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.proxy.identity.HeldCertificate;
import java.io.UncheckedIOException;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code /config_dump}: the snapshot in force as JSON (version, workloads, services with their
 * resolved endpoints, authorization policies, peer authentications). Built from plain maps so the
 * JSON shape is decided here, not by the records' accessors, and stays stable when a record gains a
 * field.
 */
public final class ConfigDump {
  private static final ObjectMapper JSON =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

  private ConfigDump() {}

  public static String json(ConfigSnapshot snapshot) {
    return write(tree(snapshot));
  }

  /**
   * With the workload certificates this node holds: SPIFFE ID, serial and expiry of each, never a
   * key.
   */
  public static String json(ConfigSnapshot snapshot, List<HeldCertificate> certificates) {
    Map<String, Object> root = tree(snapshot);
    List<Object> certs = new ArrayList<>();
    for (HeldCertificate c : certificates) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("spiffeId", c.id().toString());
      m.put("serial", c.serial());
      m.put("notAfter", c.notAfter().toString());
      certs.add(m);
    }
    root.put("certificates", certs);
    return write(root);
  }

  private static Map<String, Object> tree(ConfigSnapshot snapshot) {
    Map<String, Object> root = new LinkedHashMap<>();
    root.put("version", snapshot.version());
    List<Object> workloads = new ArrayList<>();
    for (Workload w : snapshot.workloads()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("uid", w.uid());
      m.put("name", w.name());
      m.put("namespace", w.namespace());
      m.put("ips", addresses(w.ips()));
      m.put("labels", new TreeMap<>(w.labels()));
      m.put("serviceAccount", w.serviceAccount());
      m.put("nodeName", w.nodeName());
      m.put("namedPorts", new TreeMap<>(w.namedPorts()));
      workloads.add(m);
    }
    root.put("workloads", workloads);
    List<Object> services = new ArrayList<>();
    for (MeshService s : snapshot.services()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", s.name());
      m.put("namespace", s.namespace());
      m.put("vips", addresses(s.vips()));
      List<Object> ports = new ArrayList<>();
      for (ServicePort p : s.ports()) {
        Map<String, Object> pm = new LinkedHashMap<>();
        pm.put("name", p.name());
        pm.put("port", p.port());
        if (p.targetPortName() != null) {
          pm.put("targetPortName", p.targetPortName());
        } else {
          pm.put("targetPort", p.targetPort());
        }
        pm.put("appProtocol", p.appProtocol());
        ports.add(pm);
      }
      m.put("ports", ports);
      m.put("selector", new TreeMap<>(s.selector()));
      List<String> endpoints = new ArrayList<>();
      for (Workload w : snapshot.endpoints(s)) {
        endpoints.add(w.namespace() + "/" + w.name());
      }
      m.put("endpoints", endpoints);
      services.add(m);
    }
    root.put("services", services);
    List<Object> policies = new ArrayList<>();
    for (AuthorizationPolicy p : snapshot.authorizationPolicies()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", p.name());
      m.put("namespace", p.namespace());
      m.put("selector", new TreeMap<>(p.selector()));
      m.put("action", p.action().name());
      List<Object> rules = new ArrayList<>();
      for (AuthorizationPolicy.Rule r : p.rules()) {
        Map<String, Object> rm = new LinkedHashMap<>();
        List<Object> from = new ArrayList<>();
        for (AuthorizationPolicy.Source src : r.from()) {
          Map<String, Object> sm = new LinkedHashMap<>();
          putIfAny(sm, "principals", src.principals());
          putIfAny(sm, "notPrincipals", src.notPrincipals());
          putIfAny(sm, "namespaces", src.namespaces());
          putIfAny(sm, "notNamespaces", src.notNamespaces());
          putIfAny(sm, "ipBlocks", strings(src.ipBlocks()));
          putIfAny(sm, "notIpBlocks", strings(src.notIpBlocks()));
          from.add(sm);
        }
        rm.put("from", from);
        List<Object> to = new ArrayList<>();
        for (AuthorizationPolicy.Operation op : r.to()) {
          Map<String, Object> om = new LinkedHashMap<>();
          putIfAny(om, "ports", op.ports());
          putIfAny(om, "notPorts", op.notPorts());
          to.add(om);
        }
        rm.put("to", to);
        rules.add(rm);
      }
      m.put("rules", rules);
      policies.add(m);
    }
    root.put("authorizationPolicies", policies);
    List<Object> peerAuthns = new ArrayList<>();
    for (PeerAuthentication p : snapshot.peerAuthentications()) {
      Map<String, Object> m = new LinkedHashMap<>();
      m.put("name", p.name());
      m.put("namespace", p.namespace());
      Map<String, String> selector = p.selector();
      if (selector != null) {
        m.put("selector", new TreeMap<>(selector));
      }
      m.put("mode", p.mode().name());
      peerAuthns.add(m);
    }
    root.put("peerAuthentications", peerAuthns);
    return root;
  }

  private static String write(Map<String, Object> root) {
    try {
      return JSON.writeValueAsString(root) + "\n";
    } catch (JsonProcessingException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void putIfAny(Map<String, Object> m, String key, List<?> values) {
    if (!values.isEmpty()) {
      m.put(key, values);
    }
  }

  private static List<String> strings(List<?> values) {
    List<String> out = new ArrayList<>();
    values.forEach(v -> out.add(v.toString()));
    return out;
  }

  private static List<String> addresses(List<InetAddress> ips) {
    List<String> out = new ArrayList<>();
    for (InetAddress ip : ips) {
      out.add(ip.getHostAddress());
    }
    return out;
  }
}
