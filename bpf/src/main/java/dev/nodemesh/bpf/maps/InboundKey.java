package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;

/**
 * Mirror of {@code struct nm_inbound_key}, the key of {@code nm_inbound_pods} and {@code
 * nm_inbound_listener}: a pod address, 16 bytes in network order, IPv4 stored v4-mapped
 * (::ffff:a.b.c.d) as the sk_lookup program forms it.
 */
public record InboundKey(InetAddress address) {
  public static final int SIZE = 16;
  public static final StructLayout LAYOUT =
      StructLayout.of("nm_inbound_key", SIZE, field("addr", 0, 16));

  public InboundKey {
    if (!(address instanceof Inet4Address) && !(address instanceof Inet6Address)) {
      throw new IllegalArgumentException("not an IP address: " + address);
    }
  }

  public byte[] encode() {
    byte[] raw = address.getAddress();
    if (raw.length == 16) {
      return raw;
    }
    byte[] mapped = new byte[SIZE];
    mapped[10] = (byte) 0xff;
    mapped[11] = (byte) 0xff;
    System.arraycopy(raw, 0, mapped, 12, 4);
    return mapped;
  }
}
