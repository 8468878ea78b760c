package dev.nodemesh.proxy.authz;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.l4.Relays;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import dev.nodemesh.proxy.metrics.TrafficLabels;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.util.AttributeKey;
import io.netty.util.concurrent.EventExecutor;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentMap;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The open connections that policy admitted, so that policy changes reach them and not only new
 * connections (what Istio's ztunnel does with its connection manager): after each snapshot swap
 * every admitted connection is asked its {@link Admission}'s question again, and one that the new
 * snapshot refuses is reset at once (RST, which also ends its upstream), counted in {@code
 * nodemesh_policy_denials_total{reason="policy_changed"}} (one more value of the reason label; the
 * refusing decision's own reason is in the debug log), its access-log line flagged {@code DENY}.
 * Connections still admitted are not touched.
 *
 * <p>How, without a lock on the hot path: the admission is a channel attribute (a later admission
 * of the same connection replaces it, {@link #forget} drops it), and each event loop has its own
 * plain set of admitted channels, touched only on that loop (added at admission, removed by the
 * close future's listener, so a closed connection leaves nothing behind). A swap does O(loops) work
 * on the swapping thread: it schedules one pass per loop, at most one pending at a time; each pass
 * reads the snapshot current when it runs (so quick swaps cost one pass) and checks its loop's
 * channels in batches of {@value #BATCH}, yielding to I/O between batches, and stops when a newer
 * snapshot has scheduled the next pass. A connection admitted on a snapshot is not checked again on
 * it; the admission is registered in the same loop task that decided it, so a swap either came
 * before the decision or schedules a pass after it, and one decided on an older snapshot schedules
 * a pass itself.
 *
 * <p>Limits: a pass checks every admitted connection whatever changed in the snapshot (O(N) pure
 * checks per swap, nothing per packet); the caller's identity is the one it was admitted with.
 */
public final class Admissions {
  private static final Logger log = LoggerFactory.getLogger(Admissions.class);

  /** The {@code reason} of a connection reset because a policy change no longer admits it. */
  public static final String POLICY_CHANGED = "policy_changed";

  /** Connections checked per loop task before the loop gets back to I/O. */
  static final int BATCH = 256;

  private static final AttributeKey<Admission> ADMISSION =
      AttributeKey.valueOf(Admissions.class, "admission");

  private final SnapshotHolder snapshots;
  private final ProxyMetrics metrics;
  private final ConcurrentMap<EventExecutor, Loop> loops = new ConcurrentHashMap<>();

  /** Re-checks this registry's connections after every swap of {@code snapshots}. */
  public Admissions(SnapshotHolder snapshots, ProxyMetrics metrics) {
    this.snapshots = snapshots;
    this.metrics = metrics;
    snapshots.onSwap((previous, next) -> changed());
  }

  /**
   * Keeps {@code admission} for {@code ch} until it closes, replacing one given before. Call on the
   * channel's event loop, in the task that decided the admission.
   *
   * @throws IllegalStateException off the channel's event loop
   */
  public void admit(Channel ch, Admission admission) {
    EventExecutor executor = ch.eventLoop();
    if (!executor.inEventLoop()) {
      throw new IllegalStateException("admit " + ch + " on its own event loop");
    }
    ch.attr(ADMISSION).set(admission);
    Loop loop = loops.get(executor);
    if (loop == null) {
      loop = loops.computeIfAbsent(executor, Loop::new);
    }
    loop.add(ch);
    if (admission.checkedAgainst() != snapshots.current()) {
      // Decided on a snapshot that is no longer current (an L4 fallback after the L7 sniff keeps
      // the snapshot it was routed by): the pass for the newer one may have run already.
      loop.schedule();
    }
  }

  /**
   * {@code ch} no longer stands on its admission (it is handed to a path that checks it anew, or
   * none); nothing is re-checked for it until it is admitted again. Call on its event loop.
   */
  public void forget(Channel ch) {
    ch.attr(ADMISSION).set(null);
  }

  /** The connections registered now, over all loops (exact only when no loop is busy). */
  public int size() {
    int n = 0;
    for (Loop l : loops.values()) {
      n += l.size;
    }
    return n;
  }

  /** A new snapshot is current: one pass per loop (already pending: nothing more). */
  private void changed() {
    for (Loop loop : loops.values()) {
      loop.schedule();
    }
  }

  private void refuse(Channel ch, Admission a, Admission.Refusal r) {
    ch.attr(ADMISSION).set(null);
    ch.attr(PolicyEnforcement.DECISION).set(r.decision());
    metrics
        .policyDenials(
            a.reporter(),
            TrafficLabels.principal(a.principal()),
            r.destination().name(),
            r.destination().namespace(),
            POLICY_CHANGED)
        .increment();
    log.debug(
        "denied {} -> {}:{} ({}) after a policy change: {} by {}",
        a.principal() == null ? "plaintext" : a.principal(),
        r.destination().id(),
        r.destinationPort(),
        a.address().getHostAddress(),
        r.decision().reason(),
        r.decision().policy());
    ConnectionLog line = a.accessLog();
    if (line != null) {
      line.authz("deny", r.decision().policy()).flag(ResponseFlag.DENY);
    }
    Relays.reset(ch);
  }

  /** One event loop's admitted channels; everything but the flag and the size is loop-confined. */
  private final class Loop implements Runnable, ChannelFutureListener {
    private final EventExecutor executor;
    private final Set<Channel> channels = new HashSet<>();
    private final AtomicBoolean scheduled = new AtomicBoolean();
    private volatile int size;

    Loop(EventExecutor executor) {
      this.executor = executor;
    }

    void add(Channel ch) {
      if (channels.add(ch)) {
        size = channels.size();
        // Runs on this loop (the channel's), at once if it is closed already.
        ch.closeFuture().addListener(this);
      }
    }

    /** The channel closed: forget it. */
    @Override
    public void operationComplete(ChannelFuture f) {
      channels.remove(f.channel());
      size = channels.size();
    }

    void schedule() {
      if (!scheduled.compareAndSet(false, true)) {
        return;
      }
      try {
        executor.execute(this);
      } catch (RejectedExecutionException e) {
        // The loop is shutting down, and its channels with it.
        loops.remove(executor, this);
      }
    }

    /** One pass: every channel of this loop against the snapshot current now. */
    @Override
    public void run() {
      scheduled.set(false); // a swap from here on schedules the next pass
      ConfigSnapshot now = snapshots.current();
      recheck(channels.toArray(new Channel[0]), 0, now);
    }

    private void recheck(Channel[] all, int from, ConfigSnapshot now) {
      int end = Math.min(all.length, from + BATCH);
      for (int i = from; i < end; i++) {
        Channel ch = all[i];
        Admission a = ch.attr(ADMISSION).get();
        if (a == null || !ch.isOpen()) {
          continue;
        }
        Admission.Refusal r;
        try {
          r = a.recheck(now);
        } catch (RuntimeException e) {
          // A check that cannot answer admits nothing (fail closed), as at accept.
          log.warn("re-check of {} under config version {} failed", ch, now.version(), e);
          ch.attr(ADMISSION).set(null);
          Relays.reset(ch);
          continue;
        }
        if (r != null) {
          refuse(ch, a, r);
        }
      }
      // Newer snapshot: the pass it scheduled covers every channel, this one stops.
      if (end < all.length && snapshots.current() == now) {
        try {
          executor.execute(() -> recheck(all, end, now));
        } catch (RejectedExecutionException e) {
          log.debug("{} is shutting down, and its channels with it: re-check stopped", executor);
        }
      }
    }
  }
}
