package dev.nodemesh.proxy.upstream;

import io.netty.channel.Channel;
import io.netty.util.concurrent.Future;

/**
 * Opens one upstream connection along a decided {@link UpstreamPath}: a byte channel (a socket, or
 * an HBONE CONNECT stream that carries bytes) with auto-read off, so the caller adds its handlers
 * before the first read. Runs on and completes on {@code downstream}'s event loop, so the two
 * channels share a loop and the caller needs no locks. On failure nothing is left open.
 */
public interface Dialer {
  Future<Channel> dial(Channel downstream, UpstreamPath path);
}
