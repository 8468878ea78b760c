package dev.nodemesh.model.cni;

import static java.nio.file.StandardOpenOption.CREATE_NEW;
import static java.nio.file.StandardOpenOption.WRITE;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.MissingNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SeekableByteChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import org.jspecify.annotations.Nullable;

/**
 * The pods the CNI plugin has added, one JSON file per container ID under the plugin's run dir
 * ({@code <runDir>/<containerId>.json}, default {@code /var/run/nodemesh/cni}), so a restarted node
 * proxy can rebuild its set of pods without the Kubernetes API. The plugin writes a record
 * atomically (temp file, then rename) before it calls the agent, and removes it on DEL and GC; the
 * node proxy reads them on start ({@link RecordReconciler}) and removes those whose network
 * namespace is gone.
 *
 * <p>It lives here, beside {@link AgentClient}, because it is part of the node agent's contract
 * with the plugin: the plugin already links this jar for {@code AgentClient}, so writer and reader
 * share one implementation and the plugin's class path gains nothing, while node-proxy never
 * depends on cni-plugin. (The api module holds generated code only.)
 *
 * <p>Format, stable across versions (a record written by an older plugin must stay readable): a
 * JSON object {@code {"network": <conflist name>, "containerId", "ifname", "netns": <netns path>,
 * "uid", "name", "namespace", "ips": ["10.0.0.5", ...]}}, all strings; unknown keys are ignored,
 * missing ones read as "".
 */
public final class PodRecords {

  /** One ADD as recorded. */
  public record Record(
      String network,
      String containerId,
      String ifname,
      String netns,
      String uid,
      String name,
      String namespace,
      List<String> ips) {
    public Record {
      ips = List.copyOf(ips);
    }

    public ObjectNode toJson() {
      ObjectNode o = JsonNodeFactory.instance.objectNode();
      o.put("network", network);
      o.put("containerId", containerId);
      o.put("ifname", ifname);
      o.put("netns", netns);
      o.put("uid", uid);
      o.put("name", name);
      o.put("namespace", namespace);
      ArrayNode a = o.putArray("ips");
      ips.forEach(a::add);
      return o;
    }

    public static Record fromJson(JsonNode o) {
      List<String> ips = new ArrayList<>();
      o.path("ips").forEach(ip -> ips.add(ip.asText()));
      return new Record(
          o.path("network").asText(""),
          o.path("containerId").asText(""),
          o.path("ifname").asText(""),
          o.path("netns").asText(""),
          o.path("uid").asText(""),
          o.path("name").asText(""),
          o.path("namespace").asText(""),
          ips);
    }
  }

  private static final String SUFFIX = ".json";

  private static final FileAttribute<Set<PosixFilePermission>> OWNER_ONLY =
      PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------"));

  private final Path dir;

  public PodRecords(Path dir) {
    this.dir = dir;
  }

  /**
   * Where the records live when neither the plugin's {@code runDir} nor the proxy's {@code
   * --cni-run-dir} names a dir: {@code cni} beside the agent socket ({@code /var/run/nodemesh/cni}
   * for the default socket). The one rule both sides use, so a writer and a reader configured with
   * the same socket agree without a second setting.
   */
  public static Path defaultDir(Path agentSocket) {
    return agentSocket.toAbsolutePath().resolveSibling("cni");
  }

  public Path dir() {
    return dir;
  }

  /** Container IDs are checked by the plugin's {@code CniEnv} to be safe file names. */
  private Path file(String containerId) {
    return dir.resolve(containerId + SUFFIX);
  }

  public void write(Record r) throws IOException {
    if (!Files.isDirectory(dir)) {
      Files.createDirectories(dir);
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx------"));
    }
    Path tmp = writeTemp(JsonTrees.bytes(r.toJson()));
    try {
      try {
        Files.move(tmp, file(r.containerId()), StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(tmp, file(r.containerId()), StandardCopyOption.REPLACE_EXISTING);
      }
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /**
   * {@code json} in a new owner-only file {@code .add-<n>-<attempt>.tmp} in the dir, as {@code
   * Files.createTempFile} would make it, but named from the clock rather than {@code SecureRandom}:
   * the JDK's temp-file helper seeds a {@code SecureRandom} and mixes it with SHA-1, which
   * initialises the security providers and a message digest in a plugin process that lives for one
   * ADD. {@code CREATE_NEW} makes the name unique: one another writer took in the same nanosecond
   * is retried.
   */
  private Path writeTemp(byte[] json) throws IOException {
    for (int attempt = 0; ; attempt++) {
      Path tmp = dir.resolve(".add-" + System.nanoTime() + "-" + attempt + ".tmp");
      SeekableByteChannel ch;
      try {
        ch = Files.newByteChannel(tmp, EnumSet.of(CREATE_NEW, WRITE), OWNER_ONLY);
      } catch (FileAlreadyExistsException e) {
        if (attempt < 100) {
          continue;
        }
        throw e;
      }
      try (ch) {
        ByteBuffer b = ByteBuffer.wrap(json);
        while (b.hasRemaining()) {
          ch.write(b);
        }
      } catch (IOException | RuntimeException e) {
        Files.deleteIfExists(tmp);
        throw e;
      }
      return tmp;
    }
  }

  /** The record of a container, or null; an unreadable record counts as none. */
  public @Nullable Record read(String containerId) {
    try {
      return Record.fromJson(orMissing(JsonTrees.read(Files.readAllBytes(file(containerId)))));
    } catch (IOException e) {
      return null;
    }
  }

  // An empty file reads as a record of empty fields, as ObjectMapper.readTree's MissingNode did.
  private static JsonNode orMissing(@Nullable JsonNode n) {
    return n == null ? MissingNode.getInstance() : n;
  }

  /** True if there was a record. */
  public boolean remove(String containerId) throws IOException {
    return Files.deleteIfExists(file(containerId));
  }

  /** Every readable record, in no particular order. */
  public List<Record> list() throws IOException {
    List<Record> out = new ArrayList<>();
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*" + SUFFIX)) {
      for (Path p : ds) {
        try {
          out.add(Record.fromJson(orMissing(JsonTrees.read(Files.readAllBytes(p)))));
        } catch (IOException e) {
          // A record removed by a concurrent DEL, or half-written by a crashed plugin: skip it.
        }
      }
    } catch (NoSuchFileException e) {
      return out;
    }
    return out;
  }
}
