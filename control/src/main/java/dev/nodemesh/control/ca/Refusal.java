package dev.nodemesh.control.ca;

import io.grpc.Status;
import java.util.Locale;

/** Why a certificate request was refused: the {@code reason} label and the gRPC status. */
public enum Refusal {
  /** No bearer token, or one that proves no node. */
  UNAUTHENTICATED(Status.Code.UNAUTHENTICATED),
  /** Fields missing or malformed. */
  INVALID_REQUEST(Status.Code.INVALID_ARGUMENT),
  /** The CSR does not parse, its signature does not verify, or its key is not accepted. */
  BAD_CSR(Status.Code.INVALID_ARGUMENT),
  /** The control plane knows no such workload (or has not synced yet). */
  UNKNOWN_WORKLOAD(Status.Code.PERMISSION_DENIED),
  /** The workload's uid differs: a pod of the same name was replaced. */
  UID_MISMATCH(Status.Code.PERMISSION_DENIED),
  /** The workload is not scheduled on the calling node. */
  OTHER_NODE(Status.Code.PERMISSION_DENIED);

  private final Status.Code code;

  Refusal(Status.Code code) {
    this.code = code;
  }

  public Status.Code code() {
    return code;
  }

  /** The metric label value. */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }
}
