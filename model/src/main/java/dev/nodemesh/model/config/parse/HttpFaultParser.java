package dev.nodemesh.model.config.parse;

import com.fasterxml.jackson.databind.JsonNode;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.NamespacedName;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;
import org.jspecify.annotations.Nullable;

/**
 * Reads the mesh's {@code traffic.nodemesh.dev/v1alpha1 HTTPFault} (delay and abort injection,
 * percentages as parts per million, gRPC status by name). The xDS decoder checks the same limits.
 */
public final class HttpFaultParser extends YamlFields {
  /**
   * @param file prefix of every message (a file name, or the source's name)
   * @param errors where problems are appended
   */
  public HttpFaultParser(String file, List<String> errors) {
    super(file, errors);
  }

  private static final Pattern FAULT_DELAY = Pattern.compile("([0-9]{1,6}(h|ms|us|m|s)){1,5}");

  private static final Pattern FAULT_DELAY_PART = Pattern.compile("([0-9]{1,6})(h|ms|us|m|s)");

  /** {@code traffic.nodemesh.dev/v1alpha1 HTTPFault}; null after recording why it is invalid. */
  public @Nullable HttpFault parse(JsonNode doc, String docLabel) {
    int before = errors.size();
    NamespacedName id = identify("HTTPFault", doc, docLabel);
    JsonNode spec = doc.path("spec");
    fields(spec, "spec", Set.of("delay", "abort"), false);
    HttpFault.Delay delay = null;
    JsonNode d = spec.path("delay");
    if (!d.isMissingNode()
        && !d.isNull()
        && fields(d, "spec.delay", Set.of("fixedDelay", "percentage"), false)) {
      Duration fixed = faultDelay(d);
      int pm = percentage(d, "spec.delay.percentage");
      if (fixed == null) {
        error("spec.delay.fixedDelay", "is required and must be above 0");
      } else {
        delay = new HttpFault.Delay(fixed, pm);
      }
    }
    HttpFault.Abort abort = null;
    JsonNode a = spec.path("abort");
    if (!a.isMissingNode()
        && !a.isNull()
        && fields(a, "spec.abort", Set.of("httpStatus", "grpcStatus", "percentage"), false)) {
      int pm = percentage(a, "spec.abort.percentage");
      JsonNode http = a.path("httpStatus");
      JsonNode grpc = a.path("grpcStatus");
      boolean hasHttp = !http.isMissingNode() && !http.isNull();
      boolean hasGrpc = !grpc.isMissingNode() && !grpc.isNull();
      if (hasHttp == hasGrpc) {
        error("spec.abort", "exactly one of httpStatus and grpcStatus is required");
      } else if (hasHttp) {
        if (!http.isIntegralNumber() || http.intValue() < 200 || http.intValue() > 599) {
          error("spec.abort.httpStatus", quote(http.asText()) + " is not an integer in 200-599");
        } else {
          abort = new HttpFault.Abort(http.intValue(), null, pm);
        }
      } else {
        Integer code = grpcStatus(grpc);
        if (code == null) {
          error(
              "spec.abort.grpcStatus",
              quote(grpc.asText()) + " is not a gRPC status code 1-16 or its name (UNAVAILABLE)");
        } else {
          abort = new HttpFault.Abort(200, code, pm);
        }
      }
    }
    if (delay == null && abort == null && errors.size() == before) {
      error("spec", "delay or abort is required");
    }
    if (id == null || errors.size() > before) {
      return null;
    }
    return new HttpFault(id.name(), id.namespace(), delay, abort);
  }

  /** gRPC status names, index = code. OK (0) cannot be injected. */
  public static final List<String> GRPC_STATUS_NAMES =
      List.of(
          "OK",
          "CANCELLED",
          "UNKNOWN",
          "INVALID_ARGUMENT",
          "DEADLINE_EXCEEDED",
          "NOT_FOUND",
          "ALREADY_EXISTS",
          "PERMISSION_DENIED",
          "RESOURCE_EXHAUSTED",
          "FAILED_PRECONDITION",
          "ABORTED",
          "OUT_OF_RANGE",
          "UNIMPLEMENTED",
          "INTERNAL",
          "UNAVAILABLE",
          "DATA_LOSS",
          "UNAUTHENTICATED");

  private static @Nullable Integer grpcStatus(JsonNode n) {
    if (n.isIntegralNumber()) {
      return n.intValue() >= 1 && n.intValue() <= 16 ? n.intValue() : null;
    }
    int i = GRPC_STATUS_NAMES.indexOf(n.asText());
    return i >= 1 ? i : null;
  }

  /** A percentage 0-100 (up to 4 decimals), default 100, as parts per million. */
  private int percentage(JsonNode parent, String path) {
    JsonNode p = parent.path("percentage");
    if (p.isMissingNode() || p.isNull()) {
      return HttpFault.MILLION;
    }
    if (!p.isNumber() || p.doubleValue() < 0 || p.doubleValue() > 100) {
      error(path, quote(p.asText()) + " is not a number in 0-100");
      return 0;
    }
    return (int) Math.round(p.doubleValue() * 10_000);
  }

  /** A Gateway API duration ("10s", "1m30s", "250ms"); null when absent or "0s" (no limit). */
  /**
   * HTTPFault's {@code fixedDelay}: a Gateway API duration that may also have a microseconds part
   * ({@code 500us}, {@code 1ms250us}), since an injected delay below a millisecond is useful for
   * latency-sensitive services and the field is nodemesh's own.
   */
  private @Nullable Duration faultDelay(JsonNode parent) {
    return duration(
        parent,
        "fixedDelay",
        "spec.delay.fixedDelay",
        FAULT_DELAY,
        FAULT_DELAY_PART,
        " is not a duration (e.g. 10s, 250ms, 1ms500us)");
  }
}
