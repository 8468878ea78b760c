package dev.nodemesh.cni.install;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.cni.spec.NetConf;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * install-cni on one node: copies the plugin (wrapper script as {@code <binDir>/nodemesh}, its jars
 * in {@code <binDir>/nodemesh-lib}), chains it last in the primary network config, watches the conf
 * dir to put it back when the primary CNI rewrites its file, and undoes all of it on uninstall.
 *
 * <p>The primary config is the one the runtime uses: the lexically first {@code .conf}, {@code
 * .conflist} or {@code .json} file in the conf dir (libcni's ConfFiles, sorted). Files are written
 * as a temp file in the same dir (named {@code .*.tmp}, which no runtime reads) renamed over the
 * original, keeping its mode. A {@code .conf} becomes {@code <base>.conflist} and the {@code .conf}
 * is removed, so the runtime still picks the same network; uninstall leaves it a conflist (same
 * network, one plugin less).
 */
public final class InstallCni {
  /** Where things go and what the plugin's conflist entry says. */
  public record Settings(
      Path confDir,
      Path binDir,
      Path pluginWrapper,
      Path pluginLib,
      ObjectNode pluginConf,
      @Nullable Path java) {}

  /** What one pass over the conf dir did. */
  public enum Result {
    NO_CONFIG,
    UNCHANGED,
    WRITTEN
  }

  static final String BINARY = ConfListEdit.TYPE;
  static final String LIB = "nodemesh-lib";
  private static final List<String> EXTENSIONS = List.of(".conf", ".conflist", ".json");

  static final String BUNDLED_JAVA = "jre";

  private final Settings s;
  private final Consumer<String> log;
  private @Nullable Path bundledJavaHome;

  public InstallCni(Settings settings, Consumer<String> log) {
    this.s = settings;
    this.log = log;
  }

  /**
   * Also copies the Java runtime at {@code javaHome} into the lib dir (as {@code jre/}) and points
   * the plugin at it through a relative {@code java} link, for nodes that have no Java (a
   * Kubernetes node: install-cni passes its own image's runtime). Takes the place of {@code
   * Settings.java}. Uninstall removes it with the lib dir.
   */
  public InstallCni bundleJava(Path javaHome) {
    if (!Files.isExecutable(javaHome.resolve("bin").resolve("java"))) {
      throw new IllegalArgumentException(javaHome + " has no bin/java");
    }
    this.bundledJavaHome = javaHome;
    return this;
  }

  /** The runtime's primary network config in {@code confDir}, or null if there is none yet. */
  public static @Nullable Path primary(Path confDir) throws IOException {
    List<Path> files = confFiles(confDir);
    return files.isEmpty() ? null : files.get(0);
  }

  static List<Path> confFiles(Path confDir) throws IOException {
    List<Path> out = new ArrayList<>();
    if (!Files.isDirectory(confDir)) {
      return out;
    }
    try (DirectoryStream<Path> ds = Files.newDirectoryStream(confDir)) {
      for (Path p : ds) {
        String n = p.getFileName().toString();
        if (Files.isRegularFile(p) && EXTENSIONS.stream().anyMatch(n::endsWith)) {
          out.add(p);
        }
      }
    }
    // Byte order, as Go's sort.Strings.
    out.sort(Comparator.comparing(p -> p.getFileName().toString()));
    return out;
  }

  /** Copies the wrapper and its jars into the bin dir, replacing an older copy. */
  public void installBinaries() throws IOException {
    Files.createDirectories(s.binDir());
    Path lib = s.binDir().resolve(LIB);
    Path fresh = Files.createTempDirectory(s.binDir(), "." + LIB + "-");
    try (Stream<Path> jars = Files.list(s.pluginLib())) {
      for (Path j : jars.filter(p -> p.toString().endsWith(".jar")).toList()) {
        Files.copy(j, fresh.resolve(j.getFileName()));
      }
    }
    Path javaHome = bundledJavaHome;
    if (javaHome != null) {
      copyTree(javaHome, fresh.resolve(BUNDLED_JAVA));
      // Relative, so it resolves on the host whatever path the bin dir is mounted at here.
      Files.createSymbolicLink(fresh.resolve("java"), Path.of(BUNDLED_JAVA, "bin", "java"));
    } else if (s.java() != null) {
      Files.createSymbolicLink(fresh.resolve("java"), s.java());
    }
    Files.setPosixFilePermissions(fresh, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path old = s.binDir().resolve("." + LIB + "-old");
    deleteTree(old);
    if (Files.exists(lib)) {
      Files.move(lib, old, StandardCopyOption.ATOMIC_MOVE);
    }
    Files.move(fresh, lib, StandardCopyOption.ATOMIC_MOVE);
    deleteTree(old);
    writeAtomically(
        s.binDir().resolve(BINARY),
        Files.readAllBytes(s.pluginWrapper()),
        PosixFilePermissions.fromString("rwxr-xr-x"));
    log.accept("installed " + s.binDir().resolve(BINARY) + " and " + lib);
  }

  /** Chains nodemesh last in the primary config, if it is not already. */
  public Result insert() throws IOException, ConfListEdit.Refused {
    Path primary = primary(s.confDir());
    if (primary == null) {
      return Result.NO_CONFIG;
    }
    JsonNode conf = read(primary);
    ConfListEdit.Outcome o = ConfListEdit.insert(conf, s.pluginConf());
    if (!o.changed()) {
      return Result.UNCHANGED;
    }
    Path target = asConflistPath(primary, conf);
    if (!target.equals(primary) && Files.exists(target)) {
      throw new ConfListEdit.Refused(
          primary + " would become " + target + ", which already exists");
    }
    writeAtomically(target, render(o.conflist()), Files.getPosixFilePermissions(primary));
    if (!target.equals(primary)) {
      Files.delete(primary);
    }
    log.accept("chained nodemesh last in " + target);
    return Result.WRITTEN;
  }

  /** Removes nodemesh from every config that has it, and the plugin from the bin dir. */
  public void uninstall() throws IOException {
    for (Path f : confFiles(s.confDir())) {
      JsonNode conf;
      try {
        conf = read(f);
      } catch (ConfListEdit.Refused e) {
        continue;
      }
      if (!ConfListEdit.contains(conf)) {
        continue;
      }
      try {
        ConfListEdit.Outcome o = ConfListEdit.remove(conf);
        writeAtomically(f, render(o.conflist()), Files.getPosixFilePermissions(f));
        log.accept("removed nodemesh from " + f);
      } catch (ConfListEdit.Refused e) {
        log.accept("left " + f + " alone: " + e.getMessage());
      }
    }
    Files.deleteIfExists(s.binDir().resolve(BINARY));
    deleteTree(s.binDir().resolve(LIB));
    log.accept("removed the nodemesh plugin from " + s.binDir());
  }

  /**
   * Keeps nodemesh chained until the thread is interrupted: re-checks on every change in the conf
   * dir, and every {@code poll} in case an event was missed (WatchService drops events on overflow,
   * and some writers replace the directory's files in ways it reports late). A config it refuses is
   * logged once per change and left alone.
   */
  public void watch(Duration poll) throws IOException {
    Files.createDirectories(s.confDir());
    String lastRefusal = "";
    try (WatchService ws = FileSystems.getDefault().newWatchService()) {
      s.confDir()
          .register(
              ws,
              StandardWatchEventKinds.ENTRY_CREATE,
              StandardWatchEventKinds.ENTRY_MODIFY,
              StandardWatchEventKinds.ENTRY_DELETE);
      while (!Thread.currentThread().isInterrupted()) {
        try {
          if (!Files.exists(s.binDir().resolve(BINARY))) {
            installBinaries();
          }
          insert();
          lastRefusal = "";
        } catch (ConfListEdit.Refused e) {
          String why = String.valueOf(e.getMessage());
          if (!why.equals(lastRefusal)) {
            log.accept("refusing to edit the primary CNI config: " + why);
            lastRefusal = why;
          }
        }
        WatchKey key;
        try {
          key = ws.poll(poll.toMillis(), TimeUnit.MILLISECONDS);
        } catch (InterruptedException | ClosedWatchServiceException e) {
          Thread.currentThread().interrupt();
          return;
        }
        if (key != null) {
          key.pollEvents();
          key.reset();
        }
      }
    }
  }

  private static JsonNode read(Path f) throws IOException, ConfListEdit.Refused {
    try {
      JsonNode n = NetConf.JSON.readTree(Files.readAllBytes(f));
      if (n == null) {
        throw new ConfListEdit.Refused(f + " is empty");
      }
      return n;
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new ConfListEdit.Refused(f + " is not valid JSON: " + e.getOriginalMessage());
    }
  }

  /** A single-plugin config is written back as a conflist next to it. */
  private static Path asConflistPath(Path primary, JsonNode conf) {
    String n = primary.getFileName().toString();
    if (conf.has("plugins") || n.endsWith(".conflist")) {
      return primary;
    }
    return primary.resolveSibling(n.substring(0, n.lastIndexOf('.')) + ".conflist");
  }

  private static byte[] render(ObjectNode conf) throws IOException {
    return (NetConf.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(conf) + "\n")
        .getBytes(java.nio.charset.StandardCharsets.UTF_8);
  }

  static void writeAtomically(Path target, byte[] data, Set<PosixFilePermission> mode)
      throws IOException {
    Path tmp =
        Files.createTempFile(
            target.toAbsolutePath().getParent(), "." + target.getFileName(), ".tmp");
    try {
      Files.write(tmp, data);
      Files.setPosixFilePermissions(tmp, mode);
      Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    } finally {
      Files.deleteIfExists(tmp);
    }
  }

  /** Copies a directory tree, keeping modes and copying symbolic links as links. */
  private static void copyTree(Path from, Path to) throws IOException {
    try (Stream<Path> w = Files.walk(from)) {
      for (Path p : w.toList()) {
        Files.copy(
            p,
            to.resolve(from.relativize(p).toString()),
            StandardCopyOption.COPY_ATTRIBUTES,
            java.nio.file.LinkOption.NOFOLLOW_LINKS);
      }
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> w = Files.walk(dir)) {
      for (Path p : w.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
