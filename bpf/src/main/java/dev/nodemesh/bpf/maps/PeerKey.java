package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_peer_key}, the key of {@code nm_orig_by_peer}: the client end of a
 * redirected connection (the accepted socket's peer) in the pod's namespace. Address in network
 * order, port in host order (as sockops reports it), padding zero because the key is hashed.
 */
public record PeerKey(long netnsCookie, InetSocketAddress client) {
  public static final int SIZE = 16;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_peer_key",
          SIZE,
          field("netns", 0, 8),
          field("ip4", 8, 4),
          field("port", 12, 2),
          field("pad0", 14, 2));

  public PeerKey {
    if (!(client.getAddress() instanceof Inet4Address)) {
      throw new IllegalArgumentException("IPv4 only: " + client);
    }
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putLong(0, netnsCookie);
    b.put(8, client.getAddress().getAddress());
    b.putShort(12, (short) client.getPort());
    return b.array();
  }
}
