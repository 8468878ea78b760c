package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.Inet4Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_sock_key}, the key of {@code nm_skmsg_socks} (the optional sk_msg
 * shortcut): one end of a connection between a pod socket and the proxy's in-pod outbound listener,
 * as that socket sees itself ({@code local} is its own address). Addresses in network order, ports
 * in host order, padding zero because the key is hashed.
 */
public record SockKey(long netnsCookie, InetSocketAddress local, InetSocketAddress remote) {
  public static final int SIZE = 24;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_sock_key",
          SIZE,
          field("netns", 0, 8),
          field("local_ip4", 8, 4),
          field("remote_ip4", 12, 4),
          field("local_port", 16, 2),
          field("remote_port", 18, 2),
          field("pad0", 20, 4));

  public SockKey {
    if (!(local.getAddress() instanceof Inet4Address)
        || !(remote.getAddress() instanceof Inet4Address)) {
      throw new IllegalArgumentException("IPv4 only: " + local + " -> " + remote);
    }
  }

  /** The key of the other end of the same connection. */
  public SockKey peer() {
    return new SockKey(netnsCookie, remote, local);
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putLong(0, netnsCookie);
    b.put(8, local.getAddress().getAddress());
    b.put(12, remote.getAddress().getAddress());
    b.putShort(16, (short) local.getPort());
    b.putShort(18, (short) remote.getPort());
    return b.array();
  }
}
