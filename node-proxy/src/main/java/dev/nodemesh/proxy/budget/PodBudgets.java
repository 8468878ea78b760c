package dev.nodemesh.proxy.budget;

import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOption;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Every enrolled pod's connection budgets: at most {@link #limit()} concurrent downstream
 * connections per pod and {@link Direction} (which bounds the upstream sockets too: an L4 relay has
 * one upstream per downstream, and the pooled L7 upstreams are shared). A connection past the
 * budget is reset at once (RST, before any handler sees it), counted in {@code
 * nodemesh_pod_connections_refused_total{reason="budget"}} with the pod's workload labels and
 * logged at WARN at most once per {@value #LOG_INTERVAL_SECONDS} s per pod; other pods' budgets are
 * untouched. Accept failures for lack of fds are counted the same way ({@code
 * reason="fd_exhausted"}, see {@link AcceptGuard}).
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
    FD_EXHAUSTED("fd_exhausted");

    final String label;

    Reason(String label) {
      this.label = label;
    }
  }

  private final int limit;
  private final MeterRegistry registry;
  private final ConcurrentHashMap<String, PodBudget> pods = new ConcurrentHashMap<>();

  /** Budgets of {@code limit} connections per pod and direction; series in {@code registry}. */
  public PodBudgets(int limit, MeterRegistry registry) {
    if (limit < 1) {
      throw new IllegalArgumentException("a pod's connection budget must be >= 1, got " + limit);
    }
    this.limit = limit;
    this.registry = registry;
    Gauge.builder("nodemesh.pod.connection.budget", () -> limit)
        .description("Concurrent downstream connections allowed per pod and direction")
        .strongReference(true)
        .register(registry);
  }

  public int limit() {
    return limit;
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

  /** One pod's budgets: a count per direction and its refusal counters. */
  public final class PodBudget {
    private final EnrolledPod pod;
    private final AtomicInteger[] open = new AtomicInteger[Direction.values().length];
    private final ConcurrentHashMap<String, Counter> refused = new ConcurrentHashMap<>();
    private final AtomicLong lastLog = new AtomicLong(Long.MIN_VALUE);
    private final AtomicLong unlogged = new AtomicLong();

    private PodBudget(EnrolledPod pod) {
      this.pod = pod;
      for (Direction d : Direction.values()) {
        open[d.ordinal()] = new AtomicInteger();
      }
    }

    /**
     * Counts {@code ch} against the pod's {@code direction} budget until it closes; over budget, it
     * is reset instead and false returned (the caller adds no handler).
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
      return true;
    }

    /** Connections counted now in {@code direction}. */
    public int open(Direction direction) {
      return open[direction.ordinal()].get();
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
            "pod {}/{}: {} connection(s) refused ({} {} budget {}, or no fds left); next report in"
                + " {} s at the earliest",
            pod.namespace(),
            pod.name(),
            unlogged.getAndSet(0),
            direction.name().toLowerCase(java.util.Locale.ROOT),
            reason.label,
            limit,
            LOG_INTERVAL_SECONDS);
      }
    }

    private Counter counter(Direction direction, Reason reason) {
      boolean source = direction == Direction.OUTBOUND;
      String u = TrafficLabels.UNKNOWN;
      return Counter.builder("nodemesh.pod.connections.refused")
          .description(
              "Connections of a pod reset at accept: over the pod's connection budget, or no fds")
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

  /** Resets {@code ch}: SO_LINGER 0 makes the close an RST, so the client fails at once. */
  static void refuse(Channel ch) {
    try {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
    } catch (RuntimeException e) {
      // A channel that takes no linger option still closes (with a FIN).
    }
    ch.close();
  }
}
