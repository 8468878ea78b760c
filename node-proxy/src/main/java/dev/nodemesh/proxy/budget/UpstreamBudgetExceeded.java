package dev.nodemesh.proxy.budget;

import java.io.IOException;

/**
 * An upstream socket was not made because the pod it was for has spent its upstream budget ({@link
 * PodBudgets#claimUpstream}). An {@link IOException}, so every caller handles it as the connect
 * failure it is: an L4 client is reset, an L7 try fails with 503 (flag UF).
 */
public final class UpstreamBudgetExceeded extends IOException {
  private static final long serialVersionUID = 1L;

  public UpstreamBudgetExceeded() {
    super("over the pod's upstream connection budget");
  }

  /** No stack trace: a refusal is an expected outcome under load, counted, not a bug. */
  @Override
  public synchronized Throwable fillInStackTrace() {
    return this;
  }
}
