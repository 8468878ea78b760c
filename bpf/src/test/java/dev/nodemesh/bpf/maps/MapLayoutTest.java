package dev.nodemesh.bpf.maps;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.net.InetSocketAddress;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.Objects;
import org.junit.jupiter.api.Test;

/** The Java mirrors against the BTF of the object the build compiled (cilium's alignchecker). */
class MapLayoutTest {
  private static Path object() throws URISyntaxException {
    return Path.of(
        Objects.requireNonNull(MapLayoutTest.class.getResource("/bpf/nodemesh.o")).toURI());
  }

  @Test
  void mirrorsMatchTheCompiledObject() throws Exception {
    for (StructLayout mirror :
        new StructLayout[] {PodConfig.LAYOUT, OrigDst.LAYOUT, PeerKey.LAYOUT, SockKey.LAYOUT}) {
      assertEquals(mirror, BtfLayouts.read(object(), mirror.name()), mirror.name());
    }
  }

  @Test
  void encodingsHaveTheirDeclaredSize() {
    assertEquals(PodConfig.SIZE, PodConfig.defaults().encode().length);
    InetSocketAddress a = new InetSocketAddress("10.97.0.10", 80);
    assertEquals(OrigDst.SIZE, new OrigDst(a, 7).encode().length);
    assertEquals(PeerKey.SIZE, new PeerKey(7, a).encode().length);
    InetSocketAddress l = new InetSocketAddress("127.0.0.1", 15001);
    assertEquals(SockKey.SIZE, new SockKey(7, a, l).encode().length);
  }

  @Test
  void sockKeysSwapEndsForThePeerAndUseHostOrderPorts() {
    SockKey app =
        new SockKey(
            0x0102030405060708L,
            new InetSocketAddress("127.0.0.1", 40000),
            new InetSocketAddress("127.0.0.1", 15001));
    assertEquals(app, app.peer().peer());
    byte[] b = app.peer().encode();
    java.nio.ByteBuffer n = java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.nativeOrder());
    assertEquals(15001, n.getShort(16) & 0xffff);
    assertEquals(40000, n.getShort(18) & 0xffff);
    assertEquals(127, b[8]);
    assertEquals(1, b[11]);
    assertEquals(0, n.getInt(20));
  }

  @Test
  void valuesRoundTripWithNetworkOrderWhereTheKernelUsesIt() {
    OrigDst d = new OrigDst(new InetSocketAddress("10.97.0.10", 8080), 0x1122334455667788L);
    byte[] b = d.encode();
    assertEquals(10, b[0]);
    assertEquals(0x1f, b[4]); // 8080 = 0x1f90, big-endian like sin_port
    assertEquals((byte) 0x90, b[5]);
    assertEquals(d, OrigDst.decode(b));
    assertEquals(PodConfig.defaults(), PodConfig.decode(PodConfig.defaults().encode()));
  }

  @Test
  void inboundMirrorsMatchTheCompiledObject() throws Exception {
    for (StructLayout mirror : new StructLayout[] {InboundKey.LAYOUT, InboundConfig.LAYOUT}) {
      assertEquals(mirror, BtfLayouts.read(object(), mirror.name()), mirror.name());
    }
  }

  @Test
  void inboundKeysAreV4MappedAndConfigsRoundTrip() throws Exception {
    byte[] k = new InboundKey(java.net.InetAddress.getByName("10.1.2.3")).encode();
    assertEquals(InboundKey.SIZE, k.length);
    assertEquals(
        "00000000000000000000ffff0a010203",
        java.util.HexFormat.of().formatHex(k),
        "::ffff:10.1.2.3");
    byte[] v6 = new InboundKey(java.net.InetAddress.getByName("fd00::1")).encode();
    assertEquals((byte) 0xfd, v6[0]);
    assertEquals(1, v6[15]);
    InboundConfig c = new InboundConfig(java.util.List.of(15008, 9090));
    assertEquals(InboundConfig.SIZE, c.encode().length);
    assertEquals(c, InboundConfig.decode(c.encode()));
    assertEquals(java.util.List.of(15008), InboundConfig.defaults().excludedPorts());
    org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class,
        () -> new InboundConfig(java.util.List.of(1, 2, 3, 4, 5, 6, 7, 8, 9)));
    org.junit.jupiter.api.Assertions.assertThrows(
        IllegalArgumentException.class, () -> new InboundConfig(java.util.List.of(0)));
  }

  @Test
  void ipv6MirrorsMatchTheCompiledObjectAndEncode() throws Exception {
    for (StructLayout mirror : new StructLayout[] {OrigDst6.LAYOUT, PeerKey6.LAYOUT}) {
      assertEquals(mirror, BtfLayouts.read(object(), mirror.name()), mirror.name());
    }
    OrigDst6 d = new OrigDst6(new InetSocketAddress("fd00::10", 8080), 0x1122334455667788L);
    byte[] b = d.encode();
    assertEquals(OrigDst6.SIZE, b.length);
    assertEquals((byte) 0xfd, b[0]);
    assertEquals(0x1f, b[16]); // network order, like sin6_port
    assertEquals(d, OrigDst6.decode(b));
    assertEquals(PeerKey6.SIZE, new PeerKey6(7, new InetSocketAddress("::1", 5)).encode().length);
    PodConfig v6 = PodConfig.defaults().withFlags(PodConfig.IPV6);
    assertEquals(v6, PodConfig.decode(v6.encode()));
    assertEquals(1, v6.encode()[2]);
  }
}
