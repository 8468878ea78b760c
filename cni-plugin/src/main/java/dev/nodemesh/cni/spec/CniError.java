package dev.nodemesh.cni.spec;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * A CNI error: the spec's {@code code}, {@code msg} and {@code details}, printed as JSON on stdout
 * with a non-zero exit. Codes 0-99 are the spec's; nodemesh's own start at 100.
 */
public final class CniError extends Exception {
  private static final long serialVersionUID = 1L;

  public static final int INCOMPATIBLE_VERSION = 1;
  public static final int UNSUPPORTED_FIELD = 2;
  public static final int UNKNOWN_CONTAINER = 3;
  public static final int INVALID_ENVIRONMENT = 4;
  public static final int IO_FAILURE = 5;
  public static final int DECODING_FAILURE = 6;
  public static final int INVALID_NETWORK_CONFIG = 7;
  public static final int TRY_AGAIN_LATER = 11;

  /** STATUS: the plugin cannot service ADD requests. */
  public static final int NOT_AVAILABLE = 50;

  /** libcni's catch-all for failures that fit no other code. */
  public static final int INTERNAL = 999;

  /** CHECK: the node agent does not list the pod (nodemesh's own code). */
  public static final int NOT_ENROLLED = 100;

  private final int code;
  private final String details;

  public CniError(int code, String msg, String details) {
    super(msg);
    this.code = code;
    this.details = details;
  }

  public CniError(int code, String msg) {
    this(code, msg, "");
  }

  public int code() {
    return code;
  }

  public String msg() {
    return String.valueOf(getMessage());
  }

  public String details() {
    return details;
  }

  /** The spec's error object; {@code details} is omitted when empty, as libcni does. */
  public ObjectNode toJson(CniVersion version) {
    ObjectNode o = JsonNodeFactory.instance.objectNode();
    o.put("cniVersion", version.toString());
    o.put("code", code);
    o.put("msg", msg());
    if (!details.isEmpty()) {
      o.put("details", details);
    }
    return o;
  }

  /** Reads an error object a plugin printed; null when {@code json} is not one. */
  public static @org.jspecify.annotations.Nullable CniError fromJson(
      com.fasterxml.jackson.databind.JsonNode json) {
    if (!json.isObject() || !json.path("code").isInt()) {
      return null;
    }
    return new CniError(
        json.get("code").asInt(), json.path("msg").asText(""), json.path("details").asText(""));
  }
}
