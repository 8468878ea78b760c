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
  Future<Http2StreamChannel> openStream(Channel downstream, UpstreamPath.Hbone path);
}
