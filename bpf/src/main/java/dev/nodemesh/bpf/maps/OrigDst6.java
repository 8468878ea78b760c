package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_orig_dst6}: where a native-IPv6 connect redirected to [::1] meant to
 * go, and the netns cookie of the pod that made it. Address and port in network order.
 */
public record OrigDst6(InetSocketAddress destination, long netnsCookie) {
  public static final int SIZE = 32;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_orig_dst6",
          SIZE,
          field("ip6", 0, 16),
          field("port", 16, 2),
          field("pad0", 18, 2),
          field("pad1", 20, 4),
          field("netns", 24, 8));

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    byte[] a = destination.getAddress().getAddress();
    if (a.length != 16) {
      throw new IllegalArgumentException("IPv6 only: " + destination);
    }
    b.put(0, a);
    b.order(ByteOrder.BIG_ENDIAN).putShort(16, (short) destination.getPort());
    b.order(ByteOrder.nativeOrder()).putLong(24, netnsCookie);
    return b.array();
  }

  public static OrigDst6 decode(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    byte[] ip = new byte[16];
    b.get(0, ip);
    int port = Short.toUnsignedInt(b.order(ByteOrder.BIG_ENDIAN).getShort(16));
    long netns = b.order(ByteOrder.nativeOrder()).getLong(24);
    try {
      return new OrigDst6(new InetSocketAddress(InetAddress.getByAddress(ip), port), netns);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("16 bytes are always an address", e);
    }
  }
}
