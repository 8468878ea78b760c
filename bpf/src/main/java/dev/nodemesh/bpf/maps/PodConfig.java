package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Mirror of {@code struct nm_pod_config}, the value of {@code nm_pod_netns} (key: the pod's netns
 * cookie): where connect4/connect6 send the pod's connects, which mark exempts the proxy's sockets,
 * and flags ({@link #IPV6}: the proxy also listens on [::1]:outboundPort, so native IPv6 connects
 * are redirected too).
 */
public record PodConfig(int outboundPort, int proxyMark, int flags) {
  public static final int SIZE = 8;

  /** NM_POD_IPV6: an IPv6 outbound listener exists in the pod. */
  public static final int IPV6 = 1;

  public static final StructLayout LAYOUT =
      StructLayout.of(
          "nm_pod_config",
          SIZE,
          field("outbound_port", 0, 2),
          field("flags", 2, 2),
          field("proxy_mark", 4, 4));

  /** IPv4 only (no flags). */
  public PodConfig(int outboundPort, int proxyMark) {
    this(outboundPort, proxyMark, 0);
  }

  public static PodConfig defaults() {
    return new PodConfig(15001, 0x539);
  }

  public PodConfig withFlags(int more) {
    return new PodConfig(outboundPort, proxyMark, flags | more);
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    b.putShort(0, (short) outboundPort).putShort(2, (short) flags).putInt(4, proxyMark);
    return b.array();
  }

  public static PodConfig decode(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
    return new PodConfig(
        Short.toUnsignedInt(b.getShort(0)), b.getInt(4), Short.toUnsignedInt(b.getShort(2)));
  }

  /** The netns cookie as the map key (a host-order __u64). */
  public static byte[] key(long netnsCookie) {
    return ByteBuffer.allocate(8).order(ByteOrder.nativeOrder()).putLong(0, netnsCookie).array();
  }
}
