package dev.nodemesh.proxy.l7;

import io.netty.channel.Channel;
import io.netty.handler.codec.http.HttpContent;
import java.util.ArrayList;

/**
 * The request body of one exchange on its way upstream: parts not yet written, and while a retry
 * may still need them, the parts already written (sent as retained duplicates, so a retry can send
 * them again). Past {@code maxBytes} (or when no retry is possible) nothing is kept: parts go out
 * and are forgotten, and the body can no longer be replayed. Owns the parts it holds until written
 * (without replay) or {@link #release}d.
 */
final class ReplayBuffer {
  private final ArrayList<HttpContent> parts = new ArrayList<>();
  private final int maxBytes;
  private boolean keep;
  private int bytes;
  private int sent;
  // Bytes of the parts not yet written (index >= sent): what waits for an upstream.
  private int pending;

  /**
   * @param keep keep written parts for a replay (the request may be retried)
   * @param maxBytes the most body kept for a replay
   */
  ReplayBuffer(boolean keep, int maxBytes) {
    this.keep = keep;
    this.maxBytes = maxBytes;
  }

  /** Takes {@code part} (owned from now on). */
  void add(HttpContent part) {
    parts.add(part);
    int n = part.content().readableBytes();
    bytes += n;
    pending += n;
    if (keep && bytes > maxBytes) {
      keep = false;
    }
  }

  /** Bytes of body received so far. */
  int bytes() {
    return bytes;
  }

  /**
   * Bytes received but not yet written upstream: what the exchange holds while no upstream takes
   * them (connecting, a fault delay, a retry backoff). The exchange stops reading its client while
   * this is above its limit, so it is bounded by that limit plus one read.
   */
  int pendingBytes() {
    return pending;
  }

  /** The whole body so far can be sent again. */
  boolean replayable() {
    return keep;
  }

  /** Nothing of the body was buffered or written (a retry loses nothing). */
  boolean untouched() {
    return sent == 0 && parts.isEmpty();
  }

  /** A new try: everything kept goes out again. */
  void rewind() {
    sent = 0;
    pending = 0;
    for (int i = 0; i < parts.size(); i++) {
      pending += parts.get(i).content().readableBytes();
    }
  }

  /** Writes (without flushing) what {@code upstream} has not had yet; true when it wrote any. */
  boolean writeTo(Channel upstream) {
    boolean wrote = false;
    while (sent < parts.size()) {
      HttpContent c = parts.get(sent);
      pending -= c.content().readableBytes();
      if (keep) {
        upstream.write(c.retainedDuplicate());
        sent++;
      } else {
        upstream.write(c);
        parts.remove(sent);
      }
      wrote = true;
    }
    return wrote;
  }

  /** Releases everything held; idempotent. */
  void release() {
    for (int i = 0; i < parts.size(); i++) {
      parts.get(i).release();
    }
    parts.clear();
    sent = 0;
    pending = 0;
  }
}
