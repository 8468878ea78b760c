package dev.nodemesh.proxy.l7;

import dev.nodemesh.proxy.accesslog.ResponseFlag;
import io.netty.handler.codec.http.HttpHeaders;
import org.jspecify.annotations.Nullable;

/**
 * The two directions between HTTP status codes and gRPC status codes that the L7 proxy needs.
 *
 * <p>A gRPC client reads only {@code grpc-status}; an HTTP status without one becomes a guess on
 * its side. So the proxy's own answers to a gRPC request are trailers-only gRPC responses with the
 * status gRPC's "HTTP to gRPC Status Code Mapping" gives for the HTTP answer it would have sent
 * (502, 503, 504 and 429 are UNAVAILABLE), except a local rate limit, which is RESOURCE_EXHAUSTED:
 * the code gRPC defines for a spent quota, and one that gRPC clients do not retry by default (an
 * UNAVAILABLE that clients retry would multiply the load the limit is there to shed).
 *
 * <p>The other direction lets route retry codes and outlier detection, written in HTTP statuses,
 * see a gRPC failure: a trailers-only upstream answer counts as the HTTP status its {@code
 * grpc-status} corresponds to (UNAVAILABLE is 503, as in Envoy's {@code grpcToHttpStatus}).
 */
final class GrpcStatuses {
  static final int OK = 0;
  static final int UNKNOWN = 2;
  static final int DEADLINE_EXCEEDED = 4;
  static final int PERMISSION_DENIED = 7;
  static final int RESOURCE_EXHAUSTED = 8;
  static final int UNIMPLEMENTED = 12;
  static final int INTERNAL = 13;
  static final int UNAVAILABLE = 14;
  static final int UNAUTHENTICATED = 16;

  private GrpcStatuses() {}

  /** True for a request a gRPC client sent ({@code content-type: application/grpc[+proto|...]}). */
  static boolean isGrpc(HttpHeaders h) {
    String ct = h.get("content-type");
    return ct != null && ct.regionMatches(true, 0, "application/grpc", 0, 16);
  }

  /** The gRPC status the proxy answers a gRPC request with instead of HTTP {@code httpStatus}. */
  static int forLocalAnswer(int httpStatus, @Nullable ResponseFlag flag) {
    if (flag == ResponseFlag.RL) {
      return RESOURCE_EXHAUSTED;
    }
    return switch (httpStatus) {
      case 400 -> INTERNAL;
      case 401 -> UNAUTHENTICATED;
      case 403 -> PERMISSION_DENIED;
      case 404 -> UNIMPLEMENTED;
      case 429, 502, 503, 504 -> UNAVAILABLE;
      default -> UNKNOWN;
    };
  }

  /** The HTTP status a gRPC status stands for, for retry codes and outlier detection. */
  static int asHttp(int grpcStatus) {
    return switch (grpcStatus) {
      case 0 -> 200;
      case 1 -> 499; // CANCELLED
      case 3, 9, 11 -> 400; // INVALID_ARGUMENT, FAILED_PRECONDITION, OUT_OF_RANGE
      case DEADLINE_EXCEEDED -> 504;
      case 5 -> 404; // NOT_FOUND
      case 6, 10 -> 409; // ALREADY_EXISTS, ABORTED
      case PERMISSION_DENIED -> 403;
      case RESOURCE_EXHAUSTED -> 429;
      case UNIMPLEMENTED -> 501;
      case UNAVAILABLE -> 503;
      case UNAUTHENTICATED -> 401;
      default -> 500; // UNKNOWN, INTERNAL, DATA_LOSS and anything unknown
    };
  }

  /**
   * The HTTP status a response head stands for: its grpc-status as HTTP when it is a trailers-only
   * gRPC answer (HTTP 200 carrying grpc-status in its only HEADERS), else its own status.
   */
  static int effectiveStatus(int httpStatus, HttpHeaders head, boolean trailersOnly) {
    if (httpStatus != 200 || !trailersOnly) {
      return httpStatus;
    }
    String g = head.get("grpc-status");
    if (g == null) {
      return httpStatus;
    }
    try {
      return asHttp(Integer.parseInt(g.trim()));
    } catch (NumberFormatException e) {
      return 500;
    }
  }
}
