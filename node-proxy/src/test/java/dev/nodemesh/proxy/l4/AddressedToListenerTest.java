package dev.nodemesh.proxy.l4;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.InetSocketAddress;
import java.net.SocketAddress;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link Relays#addressedToListener}: which captured connections would be relayed back into the
 * listener that accepted them, in both interception modes. An empty cell is an absent address.
 */
class AddressedToListenerTest {
  @ParameterizedTest(name = "{0}")
  @CsvSource(
      delimiter = '|',
      value = {
        // case | original | accepted's local | listener | refused
        "iptables outbound, REDIRECTed from a VIP | 10.97.0.10:80 | 127.0.0.1:15001"
            + " | 127.0.0.1:15001 | false",
        "app connected to 127.0.0.1:15001 itself (conntrack, no NAT) | 127.0.0.1:15001"
            + " | 127.0.0.1:15001 | 127.0.0.1:15001 | true",
        "eBPF outbound, record missing, conntrack fallback | 127.0.0.1:15001 | 127.0.0.1:15001"
            + " | 127.0.0.1:15001 | true",
        "iptables inbound, REDIRECTed from the app's port | 10.213.0.11:8080 | 10.213.0.11:15006"
            + " | 0.0.0.0:15006 | false",
        "iptables inbound, sent to 15006 itself | 10.213.0.11:15006 | 10.213.0.11:15006"
            + " | 0.0.0.0:15006 | true",
        "eBPF inbound, sk_lookup (local is the app's port) | 10.213.0.11:8080 | 10.213.0.11:8080"
            + " | 0.0.0.0:15006 | false",
        "eBPF inbound, sent to 15006 itself | 10.213.0.11:15006 | 10.213.0.11:15006"
            + " | 0.0.0.0:15006 | true",
        "an app's own destination on port 15001 elsewhere | 10.0.0.5:15001 | 127.0.0.1:15001"
            + " | 127.0.0.1:15001 | false",
        "IPv6 outbound, app connected to [::1]:15001 | [::1]:15001 | [::1]:15001 | [::1]:15001"
            + " | true",
        "no local address (not a socket) | 127.0.0.1:15001 | | 127.0.0.1:15001 | false",
        "no listener (not accepted) | 127.0.0.1:15001 | 127.0.0.1:15001 | | false",
      })
  void refusesOnlyWhatWasAddressedToTheListenerItself(
      String name,
      String original,
      @Nullable String local,
      @Nullable String listener,
      boolean refused) {
    assertEquals(
        refused, Relays.addressedToListener(address(original), socket(local), socket(listener)));
  }

  private static @Nullable SocketAddress socket(@Nullable String s) {
    return s == null ? null : address(s);
  }

  private static InetSocketAddress address(String s) {
    int colon = s.lastIndexOf(':');
    String host = s.substring(0, colon).replace("[", "").replace("]", "");
    return new InetSocketAddress(host, Integer.parseInt(s.substring(colon + 1)));
  }
}
