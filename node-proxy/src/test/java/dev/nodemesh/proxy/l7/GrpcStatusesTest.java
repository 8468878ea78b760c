package dev.nodemesh.proxy.l7;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.proxy.accesslog.ResponseFlag;
import io.netty.handler.codec.http.DefaultHttpHeaders;
import io.netty.handler.codec.http.HttpHeaders;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The HTTP/gRPC status mappings, table-driven (no sockets). */
class GrpcStatusesTest {
  @ParameterizedTest(name = "HTTP {0} flag {1} -> grpc-status {2}")
  @CsvSource({
    "429, RL, 8", // a local rate limit: RESOURCE_EXHAUSTED, not retried by default
    "503, UO, 14", // circuit breaker overflow: UNAVAILABLE
    "503, , 14",
    "502, , 14",
    "504, UT, 14",
    "429, , 14", // an HTTP 429 that is not our rate limit maps as gRPC says
    "403, DENY, 7",
    "404, NR, 12",
    "400, , 13",
    "401, , 16",
    "500, NR, 2",
  })
  void localAnswers(int http, String flag, int grpc) {
    assertEquals(
        grpc, GrpcStatuses.forLocalAnswer(http, flag == null ? null : ResponseFlag.valueOf(flag)));
  }

  @ParameterizedTest(name = "grpc-status {0} -> HTTP {1}")
  @CsvSource({
    "0, 200", "1, 499", "2, 500", "3, 400", "4, 504", "5, 404", "6, 409", "7, 403", "8, 429",
    "9, 400", "10, 409", "11, 400", "12, 501", "13, 500", "14, 503", "15, 500", "16, 401", "99, 500"
  })
  void upstreamStatuses(int grpc, int http) {
    assertEquals(http, GrpcStatuses.asHttp(grpc));
  }

  @Test
  void onlyATrailersOnlyAnswerCountsAsItsGrpcStatus() {
    HttpHeaders h = new DefaultHttpHeaders().set("grpc-status", "14");
    assertEquals(503, GrpcStatuses.effectiveStatus(200, h, true));
    // Headers of a response that goes on (data, then trailers): the status is not known yet.
    assertEquals(200, GrpcStatuses.effectiveStatus(200, h, false));
    assertEquals(502, GrpcStatuses.effectiveStatus(502, h, true));
    assertEquals(200, GrpcStatuses.effectiveStatus(200, new DefaultHttpHeaders(), true));
    assertEquals(
        500,
        GrpcStatuses.effectiveStatus(200, new DefaultHttpHeaders().set("grpc-status", "x"), true));
  }

  @Test
  void grpcRequestsAreRecognisedByContentType() {
    assertTrue(
        GrpcStatuses.isGrpc(new DefaultHttpHeaders().set("content-type", "application/grpc")));
    assertTrue(
        GrpcStatuses.isGrpc(
            new DefaultHttpHeaders().set("content-type", "application/grpc+proto")));
    assertFalse(GrpcStatuses.isGrpc(new DefaultHttpHeaders().set("content-type", "text/plain")));
    assertFalse(GrpcStatuses.isGrpc(new DefaultHttpHeaders()));
  }
}
