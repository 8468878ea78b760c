package dev.nodemesh.bpf.maps;

import static dev.nodemesh.bpf.maps.StructLayout.field;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * Mirror of {@code struct nm_inbound_config}, the value of {@code nm_inbound_pods}: the ports the
 * sk_lookup program leaves to the normal socket lookup (at most {@link #MAX_EXCLUDED}, host order;
 * the HBONE port first by convention). Every other TCP port of the pod's address goes to the
 * proxy's inbound listener.
 */
public record InboundConfig(List<Integer> excludedPorts) {
  public static final int SIZE = 16;
  public static final int MAX_EXCLUDED = 8;
  public static final StructLayout LAYOUT =
      StructLayout.of("nm_inbound_config", SIZE, field("exclude_ports", 0, 16));

  public InboundConfig {
    excludedPorts = List.copyOf(excludedPorts);
    if (excludedPorts.size() > MAX_EXCLUDED) {
      throw new IllegalArgumentException(
          "at most " + MAX_EXCLUDED + " excluded inbound ports, got " + excludedPorts);
    }
    for (int p : excludedPorts) {
      if (p < 1 || p > 65535) {
        throw new IllegalArgumentException("excluded inbound port out of range: " + p);
      }
    }
  }

  /** Only HBONE (15008) excluded, as iptables mode's NODEMESH_INBOUND chain. */
  public static InboundConfig defaults() {
    return new InboundConfig(List.of(15008));
  }

  public byte[] encode() {
    ByteBuffer b = ByteBuffer.allocate(SIZE).order(ByteOrder.nativeOrder());
    for (int i = 0; i < excludedPorts.size(); i++) {
      b.putShort(2 * i, (short) (int) excludedPorts.get(i));
    }
    return b.array();
  }

  public static InboundConfig decode(byte[] bytes) {
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.nativeOrder());
    List<Integer> ports = new ArrayList<>();
    for (int i = 0; i < MAX_EXCLUDED; i++) {
      int p = Short.toUnsignedInt(b.getShort(2 * i));
      if (p != 0) {
        ports.add(p);
      }
    }
    return new InboundConfig(ports);
  }
}
