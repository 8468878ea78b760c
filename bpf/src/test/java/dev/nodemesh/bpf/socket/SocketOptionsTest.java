package dev.nodemesh.bpf.socket;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

class SocketOptionsTest {
  @Test
  void parsesSockaddrIn() {
    byte[] sa = {2, 0, 0x1f, (byte) 0x90, 10, 96, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0};
    assertEquals(new InetSocketAddress("10.96.0.10", 8080), SocketOptions.parseSockaddr(sa));
  }

  @Test
  void parsesSockaddrIn6() {
    byte[] sa = new byte[28];
    sa[0] = 10;
    sa[2] = 0;
    sa[3] = 80;
    sa[8] = (byte) 0xfd;
    sa[23] = 1;
    assertEquals(new InetSocketAddress("fd00::1", 80), SocketOptions.parseSockaddr(sa));
  }

  @Test
  void rejectsUnknownFamilies() {
    assertThrows(IllegalArgumentException.class, () -> SocketOptions.parseSockaddr(new byte[16]));
  }
}
