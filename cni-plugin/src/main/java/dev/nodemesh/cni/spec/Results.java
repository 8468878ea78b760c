package dev.nodemesh.cni.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.List;

/**
 * CNI results (the ADD output) between spec versions. 0.3.x/0.4.0 and 1.x share one shape except
 * that before 1.0.0 every {@code ips} entry carries {@code "version": "4"|"6"}; every other field
 * (interfaces, routes, dns, and anything a newer plugin added) passes through as it came.
 */
public final class Results {
  private Results() {}

  /** A copy of {@code result} in {@code target}'s format, with its {@code cniVersion} set. */
  public static ObjectNode convert(ObjectNode result, CniVersion target) throws CniError {
    ObjectNode out = result.deepCopy();
    out.put("cniVersion", target.toString());
    JsonNode ips = out.get("ips");
    if (ips == null || ips.isNull()) {
      return out;
    }
    if (!ips.isArray()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "prevResult.ips must be a list");
    }
    for (JsonNode ip : ips) {
      if (!ip.isObject() || !ip.path("address").isTextual()) {
        throw new CniError(
            CniError.INVALID_NETWORK_CONFIG,
            "prevResult.ips entries need an address",
            ip.toString());
      }
      ObjectNode o = (ObjectNode) ip;
      if (target.atLeast(CniVersion.V1_0_0)) {
        o.remove("version");
      } else if (!o.has("version")) {
        o.put("version", o.get("address").asText().contains(":") ? "6" : "4");
      }
    }
    return out;
  }

  /**
   * The pod's addresses (without prefix length): every {@code ips} entry except those whose {@code
   * interface} points at a host-side interface (one without {@code sandbox}).
   */
  public static List<String> podIps(ObjectNode result) throws CniError {
    List<String> out = new ArrayList<>();
    JsonNode ips = result.path("ips");
    JsonNode ifaces = result.path("interfaces");
    if (!ips.isArray()) {
      return out;
    }
    for (JsonNode ip : (ArrayNode) ips) {
      String addr = ip.path("address").asText("");
      int slash = addr.indexOf('/');
      if (slash <= 0) {
        throw new CniError(
            CniError.INVALID_NETWORK_CONFIG,
            "prevResult.ips: address must be CIDR notation",
            "\"" + addr + "\"");
      }
      JsonNode idx = ip.get("interface");
      if (idx != null && idx.isInt() && ifaces.isArray()) {
        JsonNode iface = ifaces.path(idx.asInt());
        if (iface.isObject() && iface.path("sandbox").asText("").isEmpty()) {
          continue;
        }
      }
      out.add(addr.substring(0, slash));
    }
    return out;
  }
}
