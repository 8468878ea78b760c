package dev.nodemesh.proxy.budget;

import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import io.netty.util.AttributeKey;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every enrolled pod's connection budgets: at most {@link #limit()} concurrent downstream
 * connections per pod and {@link Direction}, and at most {@link #upstreamLimit()} upstream sockets
 * the proxy holds open on behalf of that pod's connections of that direction. A connection past the
 * budget is reset at once (RST, on the accept thread before it reaches an I/O loop: {@link
 * AcceptGuard}), counted in {@code nodemesh_pod_connections_refused_total{reason="budget"}} with
 * the pod's workload labels and logged at WARN at most once per {@value #LOG_INTERVAL_SECONDS} s
 * per pod; other pods' budgets are untouched. Accept failures for lack of fds are counted the same
 * way ({@code reason="fd_exhausted"}, see {@link AcceptGuard}).
 *
 * <p>The upstream budget exists because one downstream connection can fan out: an h2c connection
 * carries up to 100 streams, each with an upstream of its own when the upstream speaks HTTP/1.1, a
 * request may be mirrored, an HBONE server connection delivers each stream on its own socket, and
 * pooled connections outlive the request that opened them. Every socket {@code
 * upstream.DirectDialer} makes (L4 relays, L7 pools and mirrors, inbound and HBONE delivery, the
 * HBONE client's own connections) is claimed with {@link #claimUpstream} for the pod and direction
 * of the downstream it is made for (an h2 stream's connection), and given back when it closes: a
 * pooled connection counts against the pod whose request opened it until it closes, even while
 * another pod's request uses it. Past the budget the dial fails at once with {@link
 * UpstreamBudgetExceeded} (L4: the client is reset; L7: 503), counted as {@code
 * reason="upstream_budget"}. Kept per direction, like the downstream budget, so callers flooding a
 * pod cannot spend the upstream sockets it needs for calling out.
 *
 * <p>Counts are updated on the accepted channel's event loop (admit) and its close listener, with
 * atomics, since one pod's connections spread over every loop. A pod's entry and its series go with
 * {@link #release} when the pod is removed; connections still open then release into the dropped
 * entry, which nobody reads any more.
 */
public final class PodBudgets {
  private static final Logger log = LoggerFactory.getLogger(PodBudgets.class);
  static final long LOG_INTERVAL_SECONDS = 10;

  /** Why a connection was refused: the {@code reason} label. */
  public enum Reason {
    BUDGET("budget"),
    FD_EXHAUSTED("fd_exhausted"),
    UPSTREAM_BUDGET("upstream_budget");

    final String label;

    Reason(String label) {
      this.label = label;
    }
  }

  // On each admitted downstream channel: whose budgets its upstream sockets count against.
  private static final AttributeKey<Owner> OWNER = AttributeKey.valueOf(PodBudgets.class, "owner");

  /** A claim for a downstream that belongs to no pod (nothing to count against). */
  private static final Runnable NO_CLAIM = () -> {};

  private final int limit;
  private final int upstreamLimit;
  private final MeterRegistry registry;
  private final ConcurrentHashMap<String, PodBudget> pods = new ConcurrentHashMap<>();

  /**
   * Budgets of {@code limit} downstream connections and {@code upstreamLimit} upstream sockets per
   * pod and direction; series in {@code registry}.
   */
  public PodBudgets(int limit, int upstreamLimit, MeterRegistry registry) {
    if (limit < 1) {
      throw new IllegalArgumentException("a pod's connection budget must be >= 1, got " + limit);
    }
    if (upstreamLimit < 1) {
      throw new IllegalArgumentException(
          "a pod's upstream connection budget must be >= 1, got " + upstreamLimit);
    }
    this.limit = limit;
    this.upstreamLimit = upstreamLimit;
    this.registry = registry;
    Gauge.builder("nodemesh.pod.connection.budget", () -> limit)
        .description("Concurrent downstream connections allowed per pod and direction")
        .strongReference(true)
        .register(registry);
    Gauge.builder("nodemesh.pod.upstream.connection.budget", () -> upstreamLimit)
        .description(
            "Upstream sockets the proxy may hold open for one pod's connections of one direction")
        .strongReference(true)
        .register(registry);
  }

  public int limit() {
    return limit;
  }

  public int upstreamLimit() {
    return upstreamLimit;
  }

  /**
   * Claims one upstream socket for the pod and direction whose admitted connection {@code
   * downstream} is (or, for an HTTP/2 stream, whose connection it is). Returns what gives the claim
   * back (run it exactly once, when the socket closes or was never made), or null when that pod's
   * upstream budget is spent: then nothing is claimed and the refusal is counted. A downstream no
   * pod's listener admitted (tests, the proxy's own channels) claims nothing and is never refused.
   */
  public @Nullable Runnable claimUpstream(Channel downstream) {
    for (Channel c = downstream; c != null; c = c.parent()) {
      if (c.hasAttr(OWNER)) {
        Owner o = c.attr(OWNER).get();
        return o == null ? NO_CLAIM : o.budget.claimUpstream(o.direction);
      }
    }
    return NO_CLAIM;
  }

  /** The budgets of {@code pod}, made on first use. */
  public PodBudget of(EnrolledPod pod) {
    return pods.computeIfAbsent(pod.uid(), uid -> new PodBudget(pod));
  }

  /** Pods with an entry now (for tests of churn). */
  public int size() {
    return pods.size();
  }

  /** Forgets {@code pod}'s budgets and removes its refusal series. */
  public void release(EnrolledPod pod) {
    PodBudget b = pods.remove(pod.uid());
    if (b != null) {
      b.refused.values().forEach(registry::remove);
    }
  }

  /** The budgets an admitted downstream channel's upstream sockets count against. */
  private record Owner(PodBudget budget, Direction direction) {}

  /** One pod's budgets: counts per direction and its refusal counters. */
  public final class PodBudget {
    private final EnrolledPod pod;
    private final AtomicInteger[] open = new AtomicInteger[Direction.values().length];
    private final AtomicInteger[] upstream = new AtomicInteger[Direction.values().length];
    private final Owner[] owners = new Owner[Direction.values().length];
    private final ConcurrentHashMap<String, Counter> refused = new ConcurrentHashMap<>();
    private final AtomicLong lastLog = new AtomicLong(Long.MIN_VALUE);
    private final AtomicLong unlogged = new AtomicLong();

    private PodBudget(EnrolledPod pod) {
      this.pod = pod;
      for (Direction d : Direction.values()) {
        open[d.ordinal()] = new AtomicInteger();
        upstream[d.ordinal()] = new AtomicInteger();
        owners[d.ordinal()] = new Owner(this, d);
      }
    }

    /**
     * Counts {@code ch} against the pod's {@code direction} budget until it closes; over budget, it
     * is reset instead and false returned (the caller adds no handler). {@code ch} may be not yet
     * registered (just accepted): its close future completes once it is registered and closed; one
     * whose registration fails (only while the loops shut down) stays counted.
     */
    public boolean admit(Channel ch, Direction direction) {
      AtomicInteger count = open[direction.ordinal()];
      if (count.incrementAndGet() > limit) {
        count.decrementAndGet();
        refuse(ch);
        refused(direction, Reason.BUDGET);
        return false;
      }
      ch.closeFuture().addListener(f -> count.decrementAndGet());
      ch.attr(OWNER).set(owners[direction.ordinal()]);
      return true;
    }

    /** Connections counted now in {@code direction}. */
    public int open(Direction direction) {
      return open[direction.ordinal()].get();
    }

    /** Upstream sockets counted now for this pod's {@code direction} connections. */
    public int openUpstream(Direction direction) {
      return upstream[direction.ordinal()].get();
    }

    /** See {@link PodBudgets#claimUpstream}. */
    @Nullable Runnable claimUpstream(Direction direction) {
      AtomicInteger count = upstream[direction.ordinal()];
      if (count.incrementAndGet() > upstreamLimit) {
        count.decrementAndGet();
        refused(direction, Reason.UPSTREAM_BUDGET);
        return null;
      }
      AtomicBoolean given = new AtomicBoolean();
      return () -> {
        if (given.compareAndSet(false, true)) {
          count.decrementAndGet();
        }
      };
    }

    /** Counts (and now and then logs) a connection of this pod refused for {@code reason}. */
    public void refused(Direction direction, Reason reason) {
      refused
          .computeIfAbsent(direction.name() + "/" + reason.label, k -> counter(direction, reason))
          .increment();
      unlogged.incrementAndGet();
      long now = System.nanoTime();
      long last = lastLog.get();
      if ((last == Long.MIN_VALUE || now - last >= LOG_INTERVAL_SECONDS * 1_000_000_000L)
          && lastLog.compareAndSet(last, now)) {
        log.warn(
            "pod {}/{}: {} connection(s) refused ({} {}: budget {}, upstream budget {}, or no fds"
                + " left); next report in {} s at the earliest",
            pod.namespace(),
            pod.name(),
            unlogged.getAndSet(0),
            direction.name().toLowerCase(java.util.Locale.ROOT),
            reason.label,
            limit,
            upstreamLimit,
            LOG_INTERVAL_SECONDS);
      }
    }

    private Counter counter(Direction direction, Reason reason) {
      boolean source = direction == Direction.OUTBOUND;
      String u = TrafficLabels.UNKNOWN;
      return Counter.builder("nodemesh.pod.connections.refused")
          .description(
              "Connections of a pod refused: reset at accept over the pod's connection budget or"
                  + " for lack of fds, or an upstream not dialled over its upstream budget")
          .tags(
              "reporter", direction.reporter(),
              "source_workload", source ? pod.name() : u,
              "source_namespace", source ? pod.namespace() : u,
              "destination_workload", source ? u : pod.name(),
              "destination_namespace", source ? u : pod.namespace(),
              "reason", reason.label)
          .register(registry);
    }
  }

  /**
   * Resets {@code ch}: SO_LINGER 0 makes the close an RST, so the client fails at once. A channel
   * just accepted and not yet registered with an event loop (refused on the accept thread, see
   * {@link AcceptGuard}) has no loop to run a pipeline close on: its socket is closed directly.
   */
  static void refuse(Channel ch) {
    try {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
    } catch (RuntimeException e) {
      // A channel that takes no linger option still closes (with a FIN).
    }
    if (ch.isRegistered()) {
      ch.close();
    } else {
      ch.unsafe().closeForcibly();
    }
  }
}
