package dev.nodemesh.model.cni;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Records are written whole (temp file, rename), owner-only, and read back as written. */
class PodRecordsTest {
  @TempDir Path tmp;

  private static PodRecords.Record record(String containerId, String ip) {
    return new PodRecords.Record(
        "net", containerId, "eth0", "/var/run/netns/p", "uid-1", "p", "default", List.of(ip));
  }

  @Test
  void aRecordIsWrittenWholeOwnerOnlyAndLeavesNoTemporaryFile() throws IOException {
    PodRecords records = new PodRecords(tmp.resolve("run"));
    records.write(record("c1", "10.0.0.2"));
    records.write(record("c1", "10.0.0.3")); // an ADD again: replaced, not appended
    assertEquals(record("c1", "10.0.0.3"), records.read("c1"));
    assertEquals(List.of(record("c1", "10.0.0.3")), records.list());
    try (Stream<Path> files = Files.list(tmp.resolve("run"))) {
      assertEquals(List.of("c1.json"), files.map(p -> p.getFileName().toString()).toList());
    }
    assertEquals(
        "rw-------",
        PosixFilePermissions.toString(
            Files.getPosixFilePermissions(tmp.resolve("run").resolve("c1.json"))));
    assertTrue(records.remove("c1"));
    assertNull(records.read("c1"));
  }

  @Test
  void aTemporaryFileADeadWriterLeftIsNeitherReadNorInTheWay() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("run"));
    PodRecords records = new PodRecords(dir);
    // What a plugin killed between write and rename leaves: not a record.
    Files.writeString(dir.resolve(".add-1-1.tmp"), "{\"containerId\": \"half");
    records.write(record("c2", "10.0.0.4"));
    assertEquals(List.of(record("c2", "10.0.0.4")), records.list());
  }
}
