package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_pod_config}, the value of {@code nm_pod_netns} (key: the pod's netns
 * cookie): where connect4 sends the pod's connects and which mark exempts the proxy's sockets.
 */
public record PodConfig(int outboundPort, int proxyMark) {
  public static final int SIZE = 8;
  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_pod_config",
          SIZE,
          field("outbound_port", 0, 2),
          field("pad0", 2, 2),
          field("proxy_mark", 4, 4));

  public static PodConfig defaults() {
    return new PodConfig(15001, 0x539);
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putShort(0, (short) outboundPort).putInt(4, proxyMark);
    return b.array();
  }

  public static PodConfig decode(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
    return new PodConfig(Short.toUnsignedInt(b.getShort(0)), b.getInt(4));
  }

  /** The netns cookie as the map key (a host-order __u64). */
  public static byte[] key(long netnsCookie) {
    return ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putLong(0, netnsCookie).array();
  }
}
