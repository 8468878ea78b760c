package dev.nodemesh.proxy.outbound;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.net.InetAddress;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** {@code --service-cidr} values: repeatable, comma lists, both families, clear errors. */
class ServiceRangeTest {

  @Test
  void repeatedValuesAndCommaListsAddUp() throws Exception {
    ServiceRange r = ServiceRange.parse(List.of("10.96.0.0/12, fd00:96::/112", "172.20.0.0/16"));
    assertEquals("[10.96.0.0/12, fd00:96:0:0:0:0:0:0/112, 172.20.0.0/16]", r.toString());
    assertTrue(r.contains(InetAddress.getByName("10.100.1.2")));
    assertTrue(r.contains(InetAddress.getByName("fd00:96::ffff")));
    assertTrue(r.contains(InetAddress.getByName("172.20.9.9")));
    assertFalse(r.contains(InetAddress.getByName("fd00:96::1:0")));
    assertFalse(r.contains(InetAddress.getByName("10.112.0.0")));
    assertFalse(r.isEmpty());
  }

  @Test
  void noValuesIsNoRange() throws Exception {
    ServiceRange r = ServiceRange.parse(List.of());
    assertTrue(r.isEmpty());
    assertEquals(ServiceRange.NONE, r);
    assertFalse(r.contains(InetAddress.getByName("10.96.0.1")));
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "ten", "10.96.0.0", "10.96.0.0/33", "10.96.0.0/12,", "echo/12"})
  void aValueThatIsNotACidrIsRefusedByName(String value) {
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> ServiceRange.parse(List.of(value)));
    assertTrue(
        e.getMessage().startsWith("--service-cidr: not an IPv4 or IPv6 CIDR"), e.getMessage());
  }
}
