package dev.nodemesh.proxy.l7;

import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.proxy.l7.resilience.Backoff;
import dev.nodemesh.proxy.l7.resilience.ServiceTraffic;
import io.netty.handler.codec.http.HttpMethod;
import java.util.Set;
import java.util.random.RandomGenerator;
import org.jspecify.annotations.Nullable;

/**
 * The retry layer of one request: how many tries are left (the rule's {@code attempts}, none for a
 * non-idempotent method unless the route or the TrafficPolicy allows it), which failures retry (a
 * connect failure or reset before any response, a timed-out try, or a status in the rule's codes),
 * the Service's retry budget (a slot is reserved before a retry is scheduled and held by the try
 * that uses it) and the full-jitter exponential backoff between tries. The request counts in the
 * budget's "requests in flight" from construction to {@link #end}. Whether the body can still be
 * replayed is the caller's ({@link ReplayBuffer}); it is passed in. No timers and no I/O here.
 */
final class Retries {
  private static final Set<HttpMethod> IDEMPOTENT =
      Set.of(
          HttpMethod.GET,
          HttpMethod.HEAD,
          HttpMethod.OPTIONS,
          HttpMethod.TRACE,
          HttpMethod.PUT,
          HttpMethod.DELETE);

  private final ServiceTraffic st;
  private final HttpRoute.@Nullable Retry rule;
  private int left;
  private int tries;
  private boolean reserved;
  private boolean ended;

  /**
   * @param rule the route rule's retry, null for none
   * @param routeAllowsNonIdempotent the route's {@code retryNonIdempotent}
   */
  Retries(
      ServiceTraffic st,
      HttpRoute.@Nullable Retry rule,
      HttpMethod method,
      boolean routeAllowsNonIdempotent) {
    this.st = st;
    this.rule = rule;
    boolean methodOk =
        IDEMPOTENT.contains(method)
            || routeAllowsNonIdempotent
            || st.policy().retry().retryNonIdempotent();
    this.left = rule != null && methodOk ? rule.attempts() : 0;
    st.budget().requestStarted();
  }

  /** Retries still allowed (not counting the budget). */
  int left() {
    return left;
  }

  /** Tries started so far. */
  int tries() {
    return tries;
  }

  /** True while a retry may follow the current try (its head must then be a copy). */
  boolean mayFollow() {
    return left > 0;
  }

  /**
   * A try starts: returns true when it holds the retry-budget slot reserved for it (the try gives
   * it back when it ends, see {@link Attempt}).
   */
  boolean startTry() {
    tries++;
    boolean r = reserved;
    reserved = false;
    return r;
  }

  /** No further try: the replay buffer is gone, the request timed out or the breaker refused. */
  void stop() {
    left = 0;
    releaseReserved();
  }

  /**
   * Whether a failed try (no response started) is retried; when true a budget slot is reserved.
   *
   * @param replayable the body can be sent again
   */
  boolean retriesFailure(boolean replayable) {
    return left > 0 && replayable && reserve();
  }

  /**
   * Whether a response with {@code status} (a trailers-only gRPC failure as its HTTP equivalent) is
   * retried instead of being passed on; when true a budget slot is reserved.
   */
  boolean retriesStatus(int status, boolean replayable) {
    HttpRoute.Retry r = rule;
    return r != null && r.codes().contains(status) && left > 0 && replayable && reserve();
  }

  /**
   * Spends one retry and returns the delay before it: exponential with full jitter, the route's
   * backoff as the base when set, else the TrafficPolicy's, capped by its {@code backoffMax}.
   */
  long nextBackoffNanos(RandomGenerator random) {
    left--;
    TrafficPolicy.Retry policy = st.policy().retry();
    HttpRoute.Retry r = rule;
    long base =
        r != null && !r.backoff().isZero() ? r.backoff().toNanos() : policy.backoffBase().toNanos();
    long max = Math.max(base, policy.backoffMax().toNanos());
    st.meters().retries().increment();
    return Backoff.delayNanos(base, max, tries - 1, random);
  }

  /** The request is over: gives back its budget claims; idempotent. */
  void end() {
    if (ended) {
      return;
    }
    ended = true;
    releaseReserved();
    st.budget().requestEnded();
  }

  private boolean reserve() {
    if (reserved) {
      return true;
    }
    if (!st.budget().tryStartRetry()) {
      st.meters().budget().increment();
      return false;
    }
    reserved = true;
    return true;
  }

  private void releaseReserved() {
    if (reserved) {
      reserved = false;
      st.budget().retryEnded();
    }
  }
}
