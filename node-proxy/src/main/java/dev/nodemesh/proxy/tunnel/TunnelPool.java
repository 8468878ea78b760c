package dev.nodemesh.proxy.tunnel;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.DataPlane;
import io.netty.channel.Channel;
import io.netty.channel.EventLoop;
import io.netty.handler.codec.http2.Http2StreamChannel;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The HBONE client connections of one event loop, so a pod's socket and its tunnel stream share a
 * loop and the relay needs no locks (the cost: up to one connection per loop per key). Keyed by
 * (source identity, destination pod IP, expected destination identity): a pod IP reused by a
 * workload with another identity never shares a connection made for the old one. Touched only from
 * its loop.
 */
final class TunnelPool {
  /** What a pooled connection may be reused for. */
  record Key(SpiffeId source, InetAddress destination, SpiffeId expected) {}

  private final Tunnel tunnel;
  private final EventLoop loop;
  private final Map<Key, List<TunnelConnection>> connections = new HashMap<>();

  TunnelPool(Tunnel tunnel, EventLoop loop) {
    this.tunnel = tunnel;
    this.loop = loop;
  }

  EventLoop loop() {
    return loop;
  }

  /**
   * A new CONNECT-ready stream to {@code key}'s destination, on a connection with a free slot or a
   * new one made from {@code from}'s namespace. Call on this pool's loop.
   */
  Future<Http2StreamChannel> openStream(
      DataPlane plane, Key key, NetworkNamespace from, Channel downstream) {
    Promise<Http2StreamChannel> p = loop.newPromise();
    List<TunnelConnection> list = connections.get(key);
    if (list != null) {
      // A copy: a connection whose certificates expired leaves the pool while asked.
      for (TunnelConnection c : List.copyOf(list)) {
        if (c.tryReserve(p)) {
          return p;
        }
      }
    }
    TunnelConnection c = new TunnelConnection(tunnel, this, key);
    connections.computeIfAbsent(key, k -> new ArrayList<>(1)).add(c);
    c.tryReserve(p);
    c.connect(plane, from, downstream);
    return p;
  }

  void remove(TunnelConnection c) {
    List<TunnelConnection> list = connections.get(c.key());
    if (list != null && list.remove(c) && list.isEmpty()) {
      connections.remove(c.key());
    }
  }

  /** Connections held now, for tests and the admin view. */
  int size() {
    return connections.values().stream().mapToInt(List::size).sum();
  }
}
