package dev.nodemesh.proxy.state;

import com.google.protobuf.CodedInputStream;
import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.ExtensionRegistryLite;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The saved config snapshot of one node proxy: one file, {@value #FILE_NAME}, in the state
 * directory, replaced atomically on every save and checked whole on every load.
 *
 * <p>Format (version {@value #FORMAT_VERSION}), big-endian: the 8-byte magic {@code NMCONFIG}, the
 * format version (int32), the payload's length (int32), the SHA-256 of the payload (32 bytes), then
 * the payload: the node name, the snapshot version (int64), the acceptance time (epoch
 * milliseconds, int64), the number of kinds, and per kind one length-delimited {@code
 * DeltaDiscoveryResponse} carrying that kind's type URL and resources exactly as the control plane
 * sent them. A reader of another format version, a short file, a digest that does not match or a
 * payload that does not parse makes {@link #load} answer {@link Load.Unusable} with the reason:
 * never a partial config.
 *
 * <p>Saving writes a temporary file in the same directory, forces it to disk, renames it over the
 * old one (atomic on one file system) and forces the directory, so a crash at any point leaves
 * either the old file or the new one. Not thread-safe: one writer (the xDS thread).
 */
public final class SnapshotStore {
  public static final String FILE_NAME = "config.snapshot";
  public static final int FORMAT_VERSION = 1;
  static final byte[] MAGIC = "NMCONFIG".getBytes(StandardCharsets.US_ASCII);
  static final int HEADER_BYTES = MAGIC.length + 4 + 4 + 32;
  // A whole view is ~150 bytes a workload; this bounds what a corrupt length can make us allocate.
  static final int MAX_PAYLOAD_BYTES = 256 * 1024 * 1024;

  private final Path dir;
  private final Clock clock;

  public SnapshotStore(Path dir, Clock clock) {
    this.dir = dir;
    this.clock = clock;
  }

  /** What {@link #load} found. */
  public sealed interface Load {
    /** No saved snapshot (first start on this node, or the file was removed). */
    record Missing() implements Load {}

    /** A snapshot that is whole and of this format; its resources are not yet validated. */
    record Found(SavedConfig config) implements Load {}

    /** A file that cannot be used; {@code reason} says why, for the log. */
    record Unusable(String reason) implements Load {}
  }

  public Path file() {
    return dir.resolve(FILE_NAME);
  }

  /** Saves {@code resources} (per type URL) as the config of {@code version}, accepted now. */
  public SavedConfig save(String nodeName, long version, Map<String, List<Resource>> resources)
      throws IOException {
    SavedConfig config = new SavedConfig(nodeName, version, clock.instant(), resources);
    write(config);
    return config;
  }

  /** Writes {@code config} atomically over the saved one. */
  public void write(SavedConfig config) throws IOException {
    Files.createDirectories(dir);
    byte[] payload = payload(config);
    ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES);
    header.put(MAGIC).putInt(FORMAT_VERSION).putInt(payload.length).put(sha256(payload)).flip();
    Path tmp = Files.createTempFile(dir, FILE_NAME + ".", ".tmp");
    try {
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer body = ByteBuffer.wrap(payload);
        while (header.hasRemaining() || body.hasRemaining()) {
          ch.write(new ByteBuffer[] {header, body});
        }
        ch.force(true);
      }
      try {
        Files.move(tmp, file(), StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        throw new IOException("the state directory " + dir + " cannot rename atomically", e);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
    // The rename is durable only once the directory entry is on disk.
    try (FileChannel d = FileChannel.open(dir, StandardOpenOption.READ)) {
      d.force(true);
    } catch (IOException e) {
      // Some file systems refuse to open a directory for fsync; the rename is still atomic.
    }
  }

  /**
   * Removes the saved snapshot and any temporary file a crashed save left beside it (uninstall),
   * and the directory too when nothing else is in it. Returns the files removed.
   */
  public List<Path> remove() throws IOException {
    List<Path> removed = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return removed;
    }
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, FILE_NAME + "*")) {
      for (Path p : entries) {
        String name = p.getFileName().toString();
        if ((name.equals(FILE_NAME) || name.endsWith(".tmp")) && Files.deleteIfExists(p)) {
          removed.add(p);
        }
      }
    }
    try (DirectoryStream<Path> rest = Files.newDirectoryStream(dir)) {
      if (!rest.iterator().hasNext()) {
        Files.delete(dir);
      }
    }
    return removed;
  }

  /** Reads and checks the saved snapshot; never throws for what the file holds. */
  public Load load() throws IOException {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file());
    } catch (NoSuchFileException e) {
      return new Load.Missing();
    }
    return parse(bytes);
  }

  static Load parse(byte[] bytes) {
    if (bytes.length < HEADER_BYTES) {
      return new Load.Unusable(
          "truncated: "
              + bytes.length
              + " bytes, shorter than the "
              + HEADER_BYTES
              + "-byte header");
    }
    ByteBuffer in = ByteBuffer.wrap(bytes);
    byte[] magic = new byte[MAGIC.length];
    in.get(magic);
    if (!Arrays.equals(magic, MAGIC)) {
      return new Load.Unusable("not a nodemesh config snapshot (bad magic)");
    }
    int format = in.getInt();
    if (format != FORMAT_VERSION) {
      return new Load.Unusable(
          "format version " + format + ", this proxy reads version " + FORMAT_VERSION);
    }
    int length = in.getInt();
    byte[] digest = new byte[32];
    in.get(digest);
    if (length < 0 || length > MAX_PAYLOAD_BYTES) {
      return new Load.Unusable("implausible payload length " + length);
    }
    if (in.remaining() != length) {
      return new Load.Unusable(
          (in.remaining() < length ? "truncated: " : "trailing bytes: ")
              + in.remaining()
              + " payload bytes, the header says "
              + length);
    }
    byte[] payload = Arrays.copyOfRange(bytes, HEADER_BYTES, bytes.length);
    if (!MessageDigest.isEqual(digest, sha256(payload))) {
      return new Load.Unusable(
          "checksum mismatch (corrupt): SHA-256 of the payload is "
              + HexFormat.of().formatHex(sha256(payload))
              + ", the header says "
              + HexFormat.of().formatHex(digest));
    }
    try {
      return new Load.Found(readPayload(payload));
    } catch (IOException | RuntimeException e) {
      return new Load.Unusable("unreadable payload: " + e.getMessage());
    }
  }

  private static byte[] payload(SavedConfig config) throws IOException {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    CodedOutputStream out = CodedOutputStream.newInstance(bytes);
    out.writeStringNoTag(config.nodeName());
    out.writeInt64NoTag(config.version());
    out.writeInt64NoTag(config.acceptedAt().toEpochMilli());
    // Sorted by type URL, so equal configs give equal files.
    Map<String, List<Resource>> sorted = new TreeMap<>(config.resources());
    out.writeUInt32NoTag(sorted.size());
    for (Map.Entry<String, List<Resource>> e : sorted.entrySet()) {
      out.writeMessageNoTag(
          DeltaDiscoveryResponse.newBuilder()
              .setTypeUrl(e.getKey())
              .addAllResources(e.getValue())
              .build());
    }
    out.flush();
    return bytes.toByteArray();
  }

  private static SavedConfig readPayload(byte[] payload) throws IOException {
    CodedInputStream in = CodedInputStream.newInstance(payload);
    in.setSizeLimit(MAX_PAYLOAD_BYTES);
    String node = in.readString();
    long version = in.readInt64();
    Instant acceptedAt = Instant.ofEpochMilli(in.readInt64());
    int kinds = in.readUInt32();
    Map<String, List<Resource>> resources = new LinkedHashMap<>();
    for (int i = 0; i < kinds; i++) {
      DeltaDiscoveryResponse r =
          in.readMessage(DeltaDiscoveryResponse.parser(), ExtensionRegistryLite.getEmptyRegistry());
      if (resources.put(r.getTypeUrl(), r.getResourcesList()) != null) {
        throw new IOException("type " + r.getTypeUrl() + " appears twice");
      }
    }
    if (!in.isAtEnd()) {
      throw new IOException("bytes after the last kind");
    }
    if (version <= 0) {
      throw new IOException("snapshot version " + version + " (must be positive)");
    }
    return new SavedConfig(node, version, acceptedAt, resources);
  }

  private static byte[] sha256(byte[] bytes) {
    try {
      return MessageDigest.getInstance("SHA-256").digest(bytes);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("every JDK has SHA-256", e);
    }
  }
}
