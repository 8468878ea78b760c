package dev.nodemesh.proxy;

import java.time.Duration;

/**
 * How the proxy keeps one pod from hurting the others and never runs half-alive ({@code nodemesh
 * proxy} flags).
 *
 * @param maxConnectionsPerPod {@code --max-connections-per-pod}: concurrent downstream connections
 *     per enrolled pod and direction (outbound from it, inbound to it); 0 derives it from the
 *     open-file limit ({@code budget.FdLimit#defaultBudget})
 * @param loopLagUnhealthy {@code --loop-lag-unhealthy}: an event loop whose probe waits this long
 *     makes {@code /healthz} answer 503
 * @param loopStallFatal {@code --loop-stall-fatal}: an event loop whose probe waits this long ends
 *     the process (exit 70); zero: never
 * @param maxUpstreamConnectionsPerPod {@code --max-upstream-connections-per-pod}: upstream sockets
 *     the proxy may hold open for one pod's connections of one direction (relays, L7 pools and
 *     mirrors, HBONE connections and deliveries; {@code budget.PodBudgets#claimUpstream}); 0: the
 *     same as the connection budget, which the default fd arithmetic assumes (two fds per
 *     connection)
 */
public record IsolationSettings(
    int maxConnectionsPerPod,
    Duration loopLagUnhealthy,
    Duration loopStallFatal,
    int maxUpstreamConnectionsPerPod) {
  public static final IsolationSettings DEFAULT =
      new IsolationSettings(0, Duration.ofSeconds(5), Duration.ofSeconds(30), 0);

  public IsolationSettings {
    if (maxConnectionsPerPod < 0) {
      throw new IllegalArgumentException(
          "--max-connections-per-pod must be >= 0, got " + maxConnectionsPerPod);
    }
    if (loopLagUnhealthy.isNegative() || loopLagUnhealthy.isZero()) {
      throw new IllegalArgumentException("--loop-lag-unhealthy must be positive");
    }
    if (loopStallFatal.isNegative()) {
      throw new IllegalArgumentException("--loop-stall-fatal must be >= 0");
    }
    if (maxUpstreamConnectionsPerPod < 0) {
      throw new IllegalArgumentException(
          "--max-upstream-connections-per-pod must be >= 0, got " + maxUpstreamConnectionsPerPod);
    }
    if (!loopStallFatal.isZero() && loopStallFatal.compareTo(loopLagUnhealthy) < 0) {
      throw new IllegalArgumentException(
          "--loop-stall-fatal must be 0 or at least --loop-lag-unhealthy");
    }
  }

  /** The same with another per-pod connection budget. */
  public IsolationSettings withMaxConnectionsPerPod(int max) {
    return new IsolationSettings(
        max, loopLagUnhealthy, loopStallFatal, maxUpstreamConnectionsPerPod);
  }
}
