package dev.nodemesh.control.xds;

import io.grpc.Status;
import java.util.Locale;

/**
 * Why an xDS stream was refused for its node credential; the {@code reason} label of {@code
 * nodemesh_xds_streams_refused_total}.
 */
public enum StreamRefusal {
  /** No bearer token, or one the authenticator does not accept. */
  UNAUTHENTICATED(Status.Code.UNAUTHENTICATED),
  /** An authenticated node that names another node in its first request. */
  NODE_MISMATCH(Status.Code.PERMISSION_DENIED),
  /** The authenticator could not decide (the API server away): the proxy retries. */
  AUTHENTICATOR_UNAVAILABLE(Status.Code.UNAVAILABLE);

  private final Status.Code code;

  StreamRefusal(Status.Code code) {
    this.code = code;
  }

  public Status.Code code() {
    return code;
  }

  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
