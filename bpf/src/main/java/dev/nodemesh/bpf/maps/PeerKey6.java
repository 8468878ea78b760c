package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_peer_key6}, the key of {@code nm_orig6_by_peer}: the client end
 * ([::1]:port) of a redirected IPv6 connection in the pod's namespace. Address in network order,
 * port in host order, padding zero because the key is hashed.
 */
public record PeerKey6(long netnsCookie, InetSocketAddress client) {
  public static final int SIZE = 32;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_peer_key6",
          SIZE,
          field("netns", 0, 8),
          field("ip6", 8, 16),
          field("port", 24, 2),
          field("pad0", 26, 2),
          field("pad1", 28, 4));

  public PeerKey6 {
    if (!(client.getAddress() instanceof Inet6Address)) {
      throw new IllegalArgumentException("IPv6 only: " + client);
    }
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putLong(0, netnsCookie);
    b.put(8, client.getAddress().getAddress());
    b.putShort(24, (short) client.getPort());
    return b.array();
  }
}
