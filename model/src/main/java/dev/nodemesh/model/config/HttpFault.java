package dev.nodemesh.model.config;

import java.time.Duration;
import java.util.Objects;
import org.jspecify.annotations.Nullable;

/**
 * Fault injection ({@code traffic.nodemesh.dev/v1alpha1 HTTPFault}), applied to the requests of an
 * HTTPRoute or GRPCRoute rule whose {@code ExtensionRef} filter names it. Gateway API has no fault
 * filter; ExtensionRef is its extension point for exactly this. A delay holds the request before it
 * is sent upstream; an abort answers it locally (after the delay, when both are drawn).
 *
 * @param delay null: no delay
 * @param abort null: no abort
 */
public record HttpFault(
    String name, String namespace, @Nullable Delay delay, @Nullable Abort abort) {

  /** Parts per million: percentages are kept exact to four decimals, rolled with an int. */
  public static final int MILLION = 1_000_000;

  public HttpFault {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(namespace, "namespace");
  }

  public NamespacedName id() {
    return new NamespacedName(namespace, name);
  }

  /** A fixed delay for {@code perMillion} of the requests. */
  public record Delay(Duration fixed, int perMillion) {
    public Delay {
      Objects.requireNonNull(fixed);
    }
  }

  /**
   * An abort for {@code perMillion} of the requests: HTTP {@code httpStatus} (100-599), or, when
   * {@code grpcStatus} is not null, a gRPC trailers-only response with that status (1-16).
   */
  public record Abort(int httpStatus, @Nullable Integer grpcStatus, int perMillion) {}
}
