package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ConnectTargetTest {
  @Test
  void literalAddressesParseAndFormatBack() {
    InetSocketAddress v4 = ConnectTarget.parse("10.214.2.11:8080");
    assertEquals(new InetSocketAddress("10.214.2.11", 8080), v4);
    assertEquals("10.214.2.11:8080", ConnectTarget.format(v4));
    InetSocketAddress v6 = ConnectTarget.parse("[fd00::5]:443");
    assertEquals(new InetSocketAddress("fd00::5", 443), v6);
    assertEquals("[fd00::5]:443", ConnectTarget.format(v6));
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "",
        "10.0.0.1",
        "10.0.0.1:",
        ":80",
        "10.0.0.1:0",
        "10.0.0.1:65536",
        "10.0.0.1:http",
        "echo.default.svc:80",
        "10.0.0.256:80",
        "fd00::5:80",
        "[fd00::5:80",
        "[10.0.0.1]:80",
        "10.0.0.1:80:80"
      })
  void anythingButALiteralIpAndPortIsRefused(String authority) {
    assertNull(ConnectTarget.parse(authority), authority);
  }

  @Test
  void noAuthorityIsRefused() {
    assertNull(ConnectTarget.parse(null));
  }
}
