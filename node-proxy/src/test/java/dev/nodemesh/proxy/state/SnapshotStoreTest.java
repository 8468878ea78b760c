package dev.nodemesh.proxy.state;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.kind.WorkloadKind;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SnapshotStoreTest {
  private static final Instant T0 = Instant.parse("2026-12-07T08:00:00Z");

  @TempDir Path dir;

  private SnapshotStore store() {
    return new SnapshotStore(dir.resolve("state"), Clock.fixed(T0, ZoneOffset.UTC));
  }

  private static Resource workload(String name, String node, String ip, boolean ready)
      throws IOException {
    Workload w =
        new Workload(
            "uid-" + name,
            name,
            "default",
            List.of(InetAddress.getByName(ip)),
            Map.of("app", name),
            "default",
            node,
            Map.of());
    return Resource.newBuilder()
        .setName("default/" + name)
        .setVersion("v-" + name)
        .setResource(Any.pack(WorkloadKind.encode(w, ready)))
        .build();
  }

  private static Map<String, List<Resource>> resources() throws IOException {
    return Map.of(
        ResourceKinds.WORKLOAD.typeUrl(),
        List.of(
            workload("web", "n1", "10.0.0.1", true),
            // not ready and on another node: saved, but not in n1's snapshot (as over xDS)
            workload("far", "n2", "10.0.0.2", false)),
        ResourceKinds.SERVICE.typeUrl(),
        List.of());
  }

  @Test
  void savedConfigLoadsBackWholeAndMakesTheSameSnapshotAsXdsWould() throws IOException {
    SnapshotStore store = store();
    assertInstanceOf(SnapshotStore.Load.Missing.class, store.load());
    store.save("n1", 7, resources());

    SavedConfig c = assertInstanceOf(SnapshotStore.Load.Found.class, store.load()).config();
    assertEquals("n1", c.nodeName());
    assertEquals(7, c.version());
    assertEquals(T0, c.acceptedAt());
    assertEquals(
        resources().get(ResourceKinds.WORKLOAD.typeUrl()),
        c.resources().get(ResourceKinds.WORKLOAD.typeUrl()));
    ConfigSnapshot s = c.toSnapshot();
    assertEquals(7, s.version());
    assertEquals(List.of("web"), s.workloads().stream().map(Workload::name).toList());
  }

  @Test
  void aSaveReplacesTheFileAtomicallyAndLeavesNoTemporaryFile() throws IOException {
    SnapshotStore store = store();
    store.save("n1", 1, resources());
    // A temporary file left by a crash mid-write is not read.
    Files.writeString(dir.resolve("state").resolve(SnapshotStore.FILE_NAME + ".1.tmp"), "junk");
    store.save("n1", 2, Map.of());
    assertEquals(
        2, assertInstanceOf(SnapshotStore.Load.Found.class, store.load()).config().version());
    try (Stream<Path> files = Files.list(dir.resolve("state"))) {
      assertEquals(
          List.of(SnapshotStore.FILE_NAME, SnapshotStore.FILE_NAME + ".1.tmp"),
          files.map(p -> p.getFileName().toString()).sorted().toList());
    }
  }

  @Test
  void removeTakesTheSnapshotAndCrashLeftoversButNothingElse() throws IOException {
    SnapshotStore store = store();
    assertEquals(List.of(), store.remove(), "nothing saved yet: nothing to remove");
    store.save("n1", 1, resources());
    Path state = dir.resolve("state");
    Files.writeString(state.resolve(SnapshotStore.FILE_NAME + ".9.tmp"), "junk");
    Files.writeString(state.resolve("operator-notes.txt"), "not ours");
    assertEquals(
        List.of(SnapshotStore.FILE_NAME, SnapshotStore.FILE_NAME + ".9.tmp"),
        store.remove().stream().map(p -> p.getFileName().toString()).sorted().toList());
    assertInstanceOf(SnapshotStore.Load.Missing.class, store.load());
    assertTrue(Files.exists(state.resolve("operator-notes.txt")), "a file not ours stays");
    Files.delete(state.resolve("operator-notes.txt"));
    store.save("n1", 2, resources());
    store.remove();
    assertTrue(Files.notExists(state), "an emptied state dir goes too");
  }

  private byte[] saved() throws IOException {
    SnapshotStore store = store();
    store.save("n1", 3, resources());
    return Files.readAllBytes(store.file());
  }

  private String unusable(byte[] bytes) throws IOException {
    SnapshotStore store = store();
    Files.write(store.file(), bytes);
    return assertInstanceOf(SnapshotStore.Load.Unusable.class, store.load()).reason();
  }

  @Test
  void anotherFormatVersionIsRefusedByName() throws IOException {
    byte[] b = saved();
    ByteBuffer.wrap(b).putInt(SnapshotStore.MAGIC.length, SnapshotStore.FORMAT_VERSION + 1);
    assertEquals("format version 2, this proxy reads version 1", unusable(b));
  }

  @Test
  void aFlippedByteIsACorruptFile() throws IOException {
    byte[] b = saved();
    b[b.length - 5] ^= 0x40;
    String reason = unusable(b);
    assertTrue(reason.startsWith("checksum mismatch (corrupt)"), reason);
  }

  @Test
  void aTruncatedFileIsRefusedWhateverWhereItEnds() throws IOException {
    byte[] b = saved();
    assertTrue(unusable(Arrays.copyOf(b, b.length - 1)).startsWith("truncated: "));
    assertTrue(unusable(Arrays.copyOf(b, SnapshotStore.HEADER_BYTES)).startsWith("truncated: "));
    assertTrue(unusable(Arrays.copyOf(b, 10)).startsWith("truncated: "));
    assertTrue(unusable(new byte[0]).startsWith("truncated: "));
  }

  @Test
  void somethingElseIsNotASnapshot() throws IOException {
    byte[] b = saved();
    b[0] = 'X';
    assertEquals("not a nodemesh config snapshot (bad magic)", unusable(b));
  }

  @Test
  void aResourceThatNoLongerValidatesMakesTheWholeSnapshotUnusable() throws IOException {
    Resource bad =
        Resource.newBuilder()
            .setName("default/bad")
            .setVersion("1")
            .setResource(
                Any.pack(
                    dev.nodemesh.api.config.v1.Workload.newBuilder()
                        .setUid("u")
                        .setName("bad")
                        .setNamespace("default")
                        .addIps("not-an-ip")
                        .build()))
            .build();
    SavedConfig c =
        new SavedConfig("n1", 1, T0, Map.of(ResourceKinds.WORKLOAD.typeUrl(), List.of(bad)));
    IllegalArgumentException e = assertThrows(IllegalArgumentException.class, c::toSnapshot);
    assertTrue(e.getMessage().contains("not-an-ip"), e.getMessage());

    SavedConfig unknown =
        new SavedConfig("n1", 1, T0, Map.of("type.googleapis.com/x.Y", List.of()));
    assertEquals(
        "unknown resource type type.googleapis.com/x.Y",
        assertThrows(IllegalArgumentException.class, unknown::toSnapshot).getMessage());
  }
}
