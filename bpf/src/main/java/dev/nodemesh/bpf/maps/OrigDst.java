package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.Inet4Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_orig_dst}: where a redirected connect meant to go, and the netns
 * cookie of the pod that made it. Address and port are in network order, like sockaddr_in.
 */
public record OrigDst(InetSocketAddress destination, long netnsCookie) {
  public static final int SIZE = 16;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_orig_dst",
          SIZE,
          field("ip4", 0, 4),
          field("port", 4, 2),
          field("pad0", 6, 2),
          field("netns", 8, 8));

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE);
    b.put(0, destination.getAddress().getAddress());
    b.order(ByteOrder.BIG_ENDIAN).putShort(4, (short) destination.getPort());
    b.order(ByteOrder.nativeOrder()).putLong(8, netnsCookie);
    return b.array();
  }

  public static OrigDst decode(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes);
    byte[] ip = new byte[4];
    b.get(0, ip);
    int port = Short.toUnsignedInt(b.order(ByteOrder.BIG_ENDIAN).getShort(4));
    long netns = b.order(ByteOrder.nativeOrder()).getLong(8);
    try {
      return new OrigDst(
          new InetSocketAddress((Inet4Address) InetAddress.getByAddress(ip), port), netns);
    } catch (UnknownHostException e) {
      throw new IllegalArgumentException("4 bytes are always an address", e);
    }
  }
}
