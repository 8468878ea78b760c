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
        new StructLayout[] {PodConfig.LAYOUT, OrigDst.LAYOUT, PeerKey.LAYOUT}) {
      assertEquals(mirror, BtfLayouts.read(object(), mirror.name()), mirror.name());
    }
  }

  @Test
  void encodingsHaveTheirDeclaredSize() {
    assertEquals(PodConfig.SIZE, PodConfig.defaults().encode().length);
    InetSocketAddress a = new InetSocketAddress("10.97.0.10", 80);
    assertEquals(OrigDst.SIZE, new OrigDst(a, 7).encode().length);
    assertEquals(PeerKey.SIZE, new PeerKey(7, a).encode().length);
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
}
