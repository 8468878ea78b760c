package dev.nodemesh.proxy.l7.resilience;

import dev.nodemesh.model.config.TrafficPolicy;
import java.util.Collection;

/**
 * Envoy-style outlier detection for one Service: an endpoint that fails {@code consecutive5xx} (any
 * 5xx or unreachable), {@code consecutiveGatewayErrors} (502/503/504 or unreachable) or {@code
 * consecutiveConnectFailures} (connect failures, resets before a response) times in a row is
 * ejected from load balancing for {@code baseEjectionTime × times ejected} (capped at {@code
 * maxEjectionTime}), unless that would put more than {@code maxEjectionPercent} of the endpoints
 * out at once. An ejected endpoint returns by itself when its time is up (checked when the balancer
 * looks at it); a success resets the counters, and each further ejection lasts longer.
 */
public final class OutlierDetector {
  /** What happened to one try. */
  public enum Outcome {
    SUCCESS,
    /** A 5xx other than 502/503/504. */
    SERVER_ERROR,
    /** 502, 503 or 504 from the endpoint, or a timeout. */
    GATEWAY_ERROR,
    /** The endpoint could not be reached, or reset before answering. */
    CONNECT_FAILURE
  }

  private final TrafficPolicy.OutlierDetection config;

  public OutlierDetector(TrafficPolicy.OutlierDetection config) {
    this.config = config;
  }

  /**
   * Records an outcome for {@code e}, one of {@code all} endpoints of the Service.
   *
   * @return true when this outcome ejected {@code e}
   */
  public boolean record(
      EndpointStats e, Outcome outcome, Collection<EndpointStats> all, long nowNanos) {
    boolean trip;
    synchronized (e) {
      switch (outcome) {
        case SUCCESS -> {
          e.consecutive5xx = 0;
          e.consecutiveGateway = 0;
          e.consecutiveConnect = 0;
          return false;
        }
        case SERVER_ERROR -> {
          e.consecutive5xx++;
          e.consecutiveGateway = 0;
          e.consecutiveConnect = 0;
        }
        case GATEWAY_ERROR -> {
          e.consecutive5xx++;
          e.consecutiveGateway++;
          e.consecutiveConnect = 0;
        }
        case CONNECT_FAILURE -> {
          e.consecutive5xx++;
          e.consecutiveGateway++;
          e.consecutiveConnect++;
        }
      }
      trip =
          !e.ejected
              && (reached(e.consecutive5xx, config.consecutive5xx())
                  || reached(e.consecutiveGateway, config.consecutiveGatewayErrors())
                  || reached(e.consecutiveConnect, config.consecutiveConnectFailures()));
    }
    if (!trip) {
      return false;
    }
    // The share check reads the others without a global lock: two loops ejecting at the same
    // moment may overshoot by one endpoint, which is acceptable.
    int ejectedNow = 0;
    for (EndpointStats other : all) {
      if (other != e && isEjected(other, nowNanos)) {
        ejectedNow++;
      }
    }
    if ((ejectedNow + 1) * 100L > (long) config.maxEjectionPercent() * all.size()) {
      return false;
    }
    synchronized (e) {
      e.ejections++;
      long base = config.baseEjectionTime().toNanos();
      long max = config.maxEjectionTime().toNanos();
      long time = base > max / e.ejections ? max : base * e.ejections;
      e.ejected = true;
      e.ejectedUntil = nowNanos + time;
      e.consecutive5xx = 0;
      e.consecutiveGateway = 0;
      e.consecutiveConnect = 0;
    }
    return true;
  }

  private static boolean reached(int count, int threshold) {
    return threshold > 0 && count >= threshold;
  }

  /** True while {@code e} is ejected; returns it to service (lazily) once its time is up. */
  public static boolean isEjected(EndpointStats e, long nowNanos) {
    synchronized (e) {
      if (e.ejected && nowNanos - e.ejectedUntil >= 0) {
        e.ejected = false;
      }
      return e.ejected;
    }
  }

  /** How many times {@code e} has been ejected (the back-off multiplier). */
  public static int ejections(EndpointStats e) {
    synchronized (e) {
      return e.ejections;
    }
  }
}
