package dev.nodemesh.proxy.upstream;

import io.netty.channel.Channel;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;

/**
 * The HBONE side of dialing ({@code tunnel.TunnelDialer}): {@link #dial} gives a CONNECT stream
 * that carries bytes, for an HTTP client codec; {@link #openStream} gives the stream itself, for
 * the L4 relay, which passes a half-close on as END_STREAM and a reset as RST_STREAM. Declared here
 * so this package, below the tunnel, never imports it.
 */
public interface HboneDialer extends Dialer {
  /**
   * A CONNECT stream to {@code path}'s target answered 200, not auto-reading, on a pooled tunnel
   * connection; completes on {@code downstream}'s event loop, which must be the caller's.
   */
  default Future<Http2StreamChannel> openStream(Channel downstream, UpstreamPath.Hbone path) {
    return openStream(downstream, path, stream -> {});
  }

  /**
   * As {@link #openStream(Channel, UpstreamPath.Hbone)}, and {@code beforeAnswer} is given each
   * stream the CONNECT is sent on (a retry's too) right after its HEADERS are written and before
   * they are flushed: it may write DATA there, which the dialer's flush sends with them.
   */
  Future<Http2StreamChannel> openStream(
      Channel downstream, UpstreamPath.Hbone path, BeforeAnswer beforeAnswer);

  /** Writes on a CONNECT stream before its answer (see {@link #openStream}). */
  @FunctionalInterface
  interface BeforeAnswer {
    void connectSent(Http2StreamChannel stream);
  }
}
