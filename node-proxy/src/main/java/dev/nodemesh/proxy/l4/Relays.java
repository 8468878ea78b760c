package dev.nodemesh.proxy.l4;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.accesslog.ConnectionLog;
import dev.nodemesh.proxy.accesslog.ResponseFlag;
import dev.nodemesh.proxy.metrics.ConnectionMeters;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelOption;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Connects upstream and, once connected, relays: the part the inbound and outbound paths share. */
public final class Relays {
  private static final Logger log = LoggerFactory.getLogger(Relays.class);

  private Relays() {}

  /**
   * Connects from {@code from}'s namespace to {@code to} and joins the two channels. On failure the
   * downstream connection is reset, so the client sees a refused connection, not an empty one.
   */
  public static void connectAndRelay(
      DataPlane plane,
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      ConnectionMeters meters) {
    connectAndRelay(plane, downstream, from, to, meters, null);
  }

  /**
   * As above, and fills {@code accessLog} (null: this connection is not logged) with the upstream,
   * its connect time, the bytes and the response flags, and finishes it when the connection ends.
   */
  public static void connectAndRelay(
      DataPlane plane,
      Channel downstream,
      NetworkNamespace from,
      InetSocketAddress to,
      ConnectionMeters meters,
      @Nullable ConnectionLog accessLog) {
    long start = System.nanoTime();
    if (accessLog != null) {
      accessLog.upstream(to);
    }
    EarlyData early = new EarlyData();
    downstream.pipeline().addLast(EarlyData.NAME, early);
    Upstream.connect(plane, downstream, from, to)
        .addListener(
            (ChannelFutureListener)
                f -> {
                  if (!f.isSuccess()) {
                    meters.failed().increment();
                    log.debug("upstream {} from {} failed: {}", to, from, f.cause().toString());
                    f.channel().close();
                    reset(downstream);
                    if (accessLog != null) {
                      accessLog.flag(ResponseFlag.UF).finish();
                    }
                    return;
                  }
                  if (!downstream.isActive()) {
                    f.channel().close();
                    if (accessLog != null) {
                      accessLog.upstreamConnected(System.nanoTime() - start);
                      accessLog.flag(ResponseFlag.DR).finish();
                    }
                    return;
                  }
                  long connectNanos = System.nanoTime() - start;
                  meters.connected(connectNanos);
                  if (accessLog != null) {
                    accessLog.upstreamConnected(connectNanos);
                  }
                  ArrayDeque<ByteBuf> pending = early.drain();
                  boolean eof = early.inputShutdown();
                  downstream.pipeline().remove(early);
                  RelaySession.start(
                      downstream,
                      f.channel(),
                      pending,
                      eof,
                      new RelaySession.Listener() {
                        @Override
                        public void bytes(boolean fromDownstream, int count) {
                          (fromDownstream ? meters.sentBytes() : meters.receivedBytes())
                              .increment(count);
                        }

                        @Override
                        public void failed(boolean onDownstream, Throwable error) {
                          if (accessLog != null) {
                            accessLog.flag(onDownstream ? ResponseFlag.DR : ResponseFlag.UR);
                          }
                        }

                        @Override
                        public void closed(long down, long up, @Nullable Throwable error) {
                          meters.ended(System.nanoTime() - start);
                          if (accessLog != null) {
                            accessLog.bytes(down, up).finish();
                          }
                        }
                      });
                });
  }

  /**
   * Refuses a captured connection the proxy will not relay (no route): resets it and logs it with
   * {@link ResponseFlag#NR}.
   */
  public static void refuse(Channel ch, @Nullable ConnectionLog accessLog) {
    reset(ch);
    if (accessLog != null) {
      accessLog.flag(ResponseFlag.NR).finish();
    }
  }

  /**
   * The original destination of a captured connection, or null after resetting it when the kernel
   * has none (the connection did not come through the redirect rules).
   */
  public static @Nullable InetSocketAddress originalDestination(
      Channel ch, Object capturedFor, DestinationLookup lookup) {
    try {
      return lookup.get();
    } catch (IOException e) {
      log.warn(
          "connection captured for {} has no original destination: {}",
          capturedFor,
          e.getMessage());
      reset(ch);
      return null;
    }
  }

  /** Where a captured connection meant to go: SO_ORIGINAL_DST, or the eBPF record. */
  @FunctionalInterface
  public interface DestinationLookup {
    InetSocketAddress get() throws IOException;
  }

  /** Closes with RST (SO_LINGER 0): the client learns the connection failed. */
  public static void reset(Channel ch) {
    if (ch.isActive()) {
      ch.config().setOption(ChannelOption.SO_LINGER, 0);
    }
    ch.close();
  }
}
