package dev.nodemesh.proxy.l4;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One proxied connection: the downstream channel (accepted from a pod) and the upstream channel the
 * proxy opened. Installs a {@link RelayHandler} on each and starts reading. Everything runs on the
 * downstream channel's event loop, so this needs no locks.
 */
public final class RelaySession {
  private static final Logger log = LoggerFactory.getLogger(RelaySession.class);

  /** What the relay reports when it ends: bytes each way and why it closed. */
  public interface Listener {
    void bytes(boolean fromDownstream, int count);

    void closed(long bytesFromDownstream, long bytesFromUpstream, @Nullable Throwable error);

    /**
     * The relay failed with {@code error} raised on the downstream channel ({@code onDownstream})
     * or the upstream one; called once, before {@link #closed}.
     */
    default void failed(boolean onDownstream, Throwable error) {}
  }

  private final Channel downstream;
  private final Channel upstream;
  private final Listener listener;
  private final RelayHandler downHandler;
  private final RelayHandler upHandler;
  private long fromDownstream;
  private long fromUpstream;
  private @Nullable Throwable error;
  private boolean closed;

  private RelaySession(Channel downstream, Channel upstream, Listener listener) {
    this.downstream = downstream;
    this.upstream = upstream;
    this.listener = listener;
    this.downHandler = new RelayHandler(upstream, this, true);
    this.upHandler = new RelayHandler(downstream, this, false);
  }

  /**
   * Joins two connected channels. Both must have AUTO_READ off; half-closure is enabled here. Call
   * on the downstream channel's event loop.
   */
  public static RelaySession start(
      Channel downstream,
      Channel upstream,
      ArrayDeque<ByteBuf> early,
      boolean earlyEof,
      Listener listener) {
    RelaySession s = new RelaySession(downstream, upstream, listener);
    downstream.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
    upstream.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
    downstream.pipeline().addLast("relay", s.downHandler);
    upstream.pipeline().addLast("relay", s.upHandler);
    ByteBuf b;
    while ((b = early.poll()) != null) {
      s.countBytes(true, b.readableBytes());
      upstream.write(b);
    }
    upstream.flush();
    if (earlyEof) {
      // The client already ended its side: pass that on instead of reading again.
      s.downHandler.userEventTriggered(
          downstream.pipeline().context(s.downHandler), ChannelInputShutdownEvent.INSTANCE);
    } else {
      downstream.read();
    }
    upstream.read();
    return s;
  }

  void countBytes(boolean fromDown, int n) {
    if (fromDown) {
      fromDownstream += n;
    } else {
      fromUpstream += n;
    }
    listener.bytes(fromDown, n);
  }

  /** Whether the other direction than the one read by the {@code downstream} side has ended. */
  boolean otherInputDone(boolean downstream) {
    return (downstream ? upHandler : downHandler).inputDone();
  }

  /** Called after one direction has been passed on as a half-close. */
  void halfClosed() {
    if (downHandler.inputDone() && upHandler.inputDone()) {
      closeBoth("both directions ended");
    }
  }

  void fail(boolean onDownstream, Throwable cause) {
    if (error == null && !closed) {
      error = cause;
      log.debug("relay {} -> {} failed", downstream, upstream, cause);
      listener.failed(onDownstream, cause);
    }
    closeBoth("error");
  }

  void closeBoth(String why) {
    if (closed) {
      return;
    }
    closed = true;
    if (log.isDebugEnabled()) {
      log.debug(
          "relay {} <-> {} closing ({}): {} bytes up, {} bytes down",
          downstream,
          upstream,
          why,
          fromDownstream,
          fromUpstream);
    }
    flushAndClose(downstream);
    flushAndClose(upstream);
    listener.closed(fromDownstream, fromUpstream, error);
  }

  private static void flushAndClose(Channel ch) {
    if (ch.isActive()) {
      ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
    } else {
      ch.close();
    }
  }
}
