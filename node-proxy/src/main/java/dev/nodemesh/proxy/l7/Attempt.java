package dev.nodemesh.proxy.l7;

import dev.nodemesh.proxy.l7.resilience.CircuitBreaker;
import dev.nodemesh.proxy.l7.resilience.EndpointStats;
import dev.nodemesh.proxy.l7.resilience.OutlierDetector;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import org.jspecify.annotations.Nullable;

/**
 * The breaker layer of one try: its claims on the Service's shared state (a circuit-breaker
 * request, pending until the upstream is there, an HTTP/1.1 connection; the endpoint's requests in
 * flight; a retry-budget slot) and its outcome for outlier detection and the endpoint's latency.
 * Each claim is given back exactly once by {@link #end}, whatever path the try ends on. The
 * booleans here are claims held, not the exchange's state (that is {@link Exchange.State}).
 */
final class Attempt {
  private final ServiceTraffic st;
  private final EndpointStats endpoint;
  private final long start;
  private final boolean admitted;
  private boolean pending;
  private boolean connection;
  private boolean retry;
  private boolean outcomeRecorded;
  private boolean ended;

  private Attempt(ServiceTraffic st, EndpointStats endpoint, boolean admitted) {
    this.st = st;
    this.endpoint = endpoint;
    this.start = st.now();
    this.admitted = admitted;
    this.pending = admitted;
    endpoint.started();
  }

  /**
   * A try to the endpoint known by {@code endpointKey}, or null (the overflow counted) when the
   * Service's circuit breaker refuses it.
   */
  static @Nullable Attempt admit(ServiceTraffic st, String endpointKey) {
    CircuitBreaker cb = st.breaker();
    if (cb != null && !cb.tryAdmit()) {
      st.meters().overflows().increment();
      return null;
    }
    return new Attempt(st, st.stats(endpointKey), cb != null);
  }

  /** This try holds a retry-budget slot ({@link Retries#startTry}), given back at its end. */
  void holdsRetry(boolean retry) {
    this.retry = retry;
  }

  /** The upstream is there (or could not be had): the try no longer counts as pending. */
  void upstreamReady() {
    CircuitBreaker cb = st.breaker();
    if (pending && !ended && cb != null) {
      pending = false;
      cb.pendingEnded();
    }
  }

  /** The try took an upstream connection of its own (HTTP/1.1; an HTTP/2 stream is not one). */
  void connectionTaken(boolean h2) {
    CircuitBreaker cb = st.breaker();
    if (!ended && !h2 && cb != null) {
      cb.connectionTaken();
      connection = true;
    }
  }

  /**
   * Records what the endpoint did with this try, once.
   *
   * @param answered the endpoint answered (its latency counts)
   */
  void outcome(OutlierDetector.Outcome o, boolean answered) {
    if (outcomeRecorded) {
      return;
    }
    outcomeRecorded = true;
    if (answered) {
      long now = st.now();
      endpoint.observe(now - start, now);
    }
    st.record(endpoint, o);
  }

  /** Gives back everything the try holds; idempotent. */
  void end() {
    if (ended) {
      return;
    }
    ended = true;
    CircuitBreaker cb = st.breaker();
    if (cb != null) {
      if (pending) {
        cb.pendingEnded();
      }
      if (connection) {
        cb.connectionReleased();
      }
      if (admitted) {
        cb.requestEnded();
      }
    }
    if (retry) {
      st.budget().retryEnded();
    }
    endpoint.ended();
  }
}
