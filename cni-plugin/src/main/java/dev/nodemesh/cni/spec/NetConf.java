package dev.nodemesh.cni.spec;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.model.cni.JsonTrees;
import dev.nodemesh.model.cni.MalformedJsonException;
import org.jspecify.annotations.Nullable;

/**
 * One plugin's network configuration as the runtime sends it on stdin: the spec's fields read, the
 * whole object kept so plugin-specific keys and {@code prevResult} pass through untouched.
 */
public record NetConf(CniVersion version, String name, String type, ObjectNode raw) {
  /**
   * Decodes stdin: not JSON or not an object is code 6; an unsupported {@code cniVersion} code 1; a
   * spec field of the wrong type code 7.
   */
  public static NetConf parse(byte[] stdin) throws CniError {
    JsonNode tree;
    try {
      tree = JsonTrees.read(stdin);
    } catch (MalformedJsonException e) {
      throw malformed(e);
    }
    return of(tree);
  }

  /** As {@link #parse}, for stdin the caller has read already: its tree (null when empty). */
  public static NetConf of(@Nullable JsonNode tree) throws CniError {
    if (tree == null || !tree.isObject()) {
      throw new CniError(
          CniError.DECODING_FAILURE,
          "decoding the network configuration failed",
          "stdin must hold one JSON object");
    }
    ObjectNode raw = (ObjectNode) tree;
    JsonNode v = raw.path("cniVersion");
    if (!v.isMissingNode() && !v.isTextual()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "cniVersion must be a string");
    }
    CniVersion version = CniVersion.parse(v.asText(""));
    return new NetConf(version, text(raw, "name"), text(raw, "type"), raw);
  }

  /** The error {@link #parse} reports for stdin that is not JSON. */
  public static CniError malformed(MalformedJsonException e) {
    return new CniError(
        CniError.DECODING_FAILURE, "decoding the network configuration failed", e.getMessage());
  }

  /** The previous plugin's result, or null when there is none. */
  public @Nullable ObjectNode prevResult() throws CniError {
    JsonNode p = raw.get("prevResult");
    if (p == null || p.isNull()) {
      return null;
    }
    if (!p.isObject()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, "prevResult must be an object");
    }
    return (ObjectNode) p;
  }

  private static String text(ObjectNode raw, String field) throws CniError {
    JsonNode n = raw.path(field);
    if (n.isMissingNode() || n.isNull()) {
      return "";
    }
    if (!n.isTextual()) {
      throw new CniError(CniError.INVALID_NETWORK_CONFIG, field + " must be a string");
    }
    return n.asText();
  }
}
