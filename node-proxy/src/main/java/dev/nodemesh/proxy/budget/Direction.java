package dev.nodemesh.proxy.budget;

/**
 * Which of a pod's budgets a connection counts against: the connections the pod opens (captured on
 * its 15001 listener) or the ones opened to it (15006, 15008). Kept apart so that callers flooding
 * a pod cannot use up the pod's own budget for calling out, and the reverse.
 */
public enum Direction {
  /** Captured on the pod's outbound listener: the pod is the source ({@code reporter=source}). */
  OUTBOUND("source"),
  /** Arriving at the pod's inbound or HBONE listener ({@code reporter=destination}). */
  INBOUND("destination");

  private final String reporter;

  Direction(String reporter) {
    this.reporter = reporter;
  }

  /** The {@code reporter} label of the pod's side. */
  public String reporter() {
    return reporter;
  }
}
