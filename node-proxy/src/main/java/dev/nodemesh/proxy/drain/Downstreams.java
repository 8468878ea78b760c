package dev.nodemesh.proxy.drain;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.channel.Channel;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * Every connection the proxy accepted in a pod (outbound and inbound capture, HBONE), so that a
 * stop can let them finish: {@link #drain} tells each one ({@link DrainEvent}), waits until all
 * have closed or the grace period is over, then cuts the rest. Each connection open when the drain
 * began, or accepted during it, is counted once at its end: {@code
 * nodemesh_drain_connections_total{outcome="drained"}} when it closed by itself, {@code
 * outcome="cut"} when the grace period ended it.
 *
 * <p>Limits: only downstream connections are tracked; an upstream connection ends with the
 * downstream it serves. The wait polls (every 20 ms), it does not need to be prompt.
 */
public final class Downstreams {
  private final ChannelGroup open =
      new DefaultChannelGroup("downstreams", GlobalEventExecutor.INSTANCE);
  private final AtomicBoolean draining = new AtomicBoolean();
  private final AtomicBoolean cutting = new AtomicBoolean();
  private final Counter drained;
  private final Counter cut;

  public Downstreams(MeterRegistry registry) {
    this.drained = counter(registry, "drained");
    this.cut = counter(registry, "cut");
  }

  private static Counter counter(MeterRegistry registry, String outcome) {
    return Counter.builder("nodemesh.drain.connections")
        .description(
            "Connections open during a drain, by how they ended: closed by themselves or cut at the grace period's end")
        .tag("outcome", outcome)
        .register(registry);
  }

  /** Remembers an accepted connection until it closes; call it from its initializer. */
  public void track(Channel ch) {
    open.add(ch);
    ch.closeFuture()
        .addListener(
            f -> {
              if (draining.get() && !cutting.get()) {
                drained.increment();
              }
            });
    if (draining.get()) {
      // Accepted while the listeners were closing: it drains like the others.
      ch.eventLoop().execute(() -> ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE));
    }
  }

  public boolean draining() {
    return draining.get();
  }

  /** The connections open now. */
  public int size() {
    return open.size();
  }

  /**
   * Tells every connection to finish, waits up to {@code grace} for all of them to close, then
   * closes the rest. Call it once the listeners stop accepting. Returns the number cut.
   */
  public int drain(Duration grace) throws InterruptedException {
    if (!draining.compareAndSet(false, true)) {
      throw new IllegalStateException("already drained");
    }
    for (Channel ch : open) {
      ch.eventLoop().execute(() -> ch.pipeline().fireUserEventTriggered(DrainEvent.INSTANCE));
    }
    long deadline = System.nanoTime() + grace.toNanos();
    while (!open.isEmpty() && System.nanoTime() - deadline < 0) {
      TimeUnit.MILLISECONDS.sleep(20);
    }
    cutting.set(true);
    int left = open.size();
    cut.increment(left);
    open.close().awaitUninterruptibly(5, TimeUnit.SECONDS);
    return left;
  }
}
