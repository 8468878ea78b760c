package dev.nodemesh.proxy.metrics;

import io.grpc.Status;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.DistributionSummary;
import io.micrometer.core.instrument.Timer;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.function.Function;
import org.jspecify.annotations.Nullable;

/**
 * The request meters of one label set: one counter per response code class (1xx..5xx; index 0 for
 * requests that got no response, e.g. the client went away; {@code incomplete} for a response that
 * started but was broken off before its end, so it is never counted as the success its status
 * says), the request duration histogram, request and response body sizes, and for gRPC responses a
 * counter per {@code grpc-status} (created on first use, so plain HTTP edges carry no gRPC series).
 */
public final class HttpMeters {
  /**
   * Values of the {@code response_code_class} label, by {@code status / 100} (0 = none), then
   * {@code incomplete} ({@link #INCOMPLETE}).
   */
  static final String[] CLASSES = {"none", "1xx", "2xx", "3xx", "4xx", "5xx", "incomplete"};

  /** Index in {@link #CLASSES} of responses broken off after their head was sent. */
  public static final int INCOMPLETE = 6;

  /**
   * Values of the {@code grpc_status} label: the 17 codes by name (index = code, gRPC's own names),
   * then "invalid" for anything else.
   */
  static final String[] GRPC_CODES = grpcCodes();

  private static String[] grpcCodes() {
    Status.Code[] codes = Status.Code.values();
    String[] names = new String[codes.length + 1];
    for (Status.Code c : codes) {
      names[c.value()] = c.name();
    }
    names[codes.length] = "invalid";
    return names;
  }

  private final Counter[] requests;
  private final Timer duration;
  private final DistributionSummary requestSize;
  private final DistributionSummary responseSize;
  private final Function<String, Counter> grpcCounter;
  private final AtomicReferenceArray<Counter> grpc = new AtomicReferenceArray<>(GRPC_CODES.length);

  HttpMeters(
      Counter[] requests,
      Timer duration,
      DistributionSummary requestSize,
      DistributionSummary responseSize,
      Function<String, Counter> grpcCounter) {
    this.requests = requests;
    this.duration = duration;
    this.requestSize = requestSize;
    this.responseSize = responseSize;
    this.grpcCounter = grpcCounter;
  }

  /** One request ended with {@code status} (0 = no response) after {@code nanos}. */
  public void record(int status, long nanos) {
    int cls = status / 100;
    requests[cls >= 1 && cls <= 5 ? cls : 0].increment();
    duration.record(nanos, TimeUnit.NANOSECONDS);
  }

  /**
   * A response whose head went to the client but that ended short (upstream reset, timeout or the
   * client going away mid-body): counted as {@code incomplete}, whatever its status said.
   */
  public void recordIncomplete(long nanos, long requestBytes, long responseBytes) {
    requests[INCOMPLETE].increment();
    duration.record(nanos, TimeUnit.NANOSECONDS);
    requestSize.record(requestBytes);
    responseSize.record(responseBytes);
  }

  /**
   * As {@link #record(int, long)}, with the body sizes relayed each way and the response's {@code
   * grpc-status} (from its trailers, or its head for a trailers-only response; null when none).
   */
  public void record(
      int status, long nanos, long requestBytes, long responseBytes, @Nullable String grpcStatus) {
    record(status, nanos);
    requestSize.record(requestBytes);
    responseSize.record(responseBytes);
    if (grpcStatus != null) {
      int code = grpcIndex(grpcStatus);
      Counter c = grpc.get(code);
      if (c == null) {
        // Registration is idempotent in the registry: a race creates the same counter twice.
        c = grpcCounter.apply(GRPC_CODES[code]);
        grpc.set(code, c);
      }
      c.increment();
    }
  }

  static int grpcIndex(String grpcStatus) {
    try {
      int code = Integer.parseInt(grpcStatus.trim());
      return code >= 0 && code < GRPC_CODES.length - 1 ? code : GRPC_CODES.length - 1;
    } catch (NumberFormatException e) {
      return GRPC_CODES.length - 1;
    }
  }

  /** Requests counted so far with this status class, or {@link #INCOMPLETE} (tests). */
  public double count(int statusClass) {
    return requests[statusClass].count();
  }
}
