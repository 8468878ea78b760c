package dev.nodemesh.cni.install;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.nodemesh.model.cni.JsonTrees;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * install-cni on one node: copies the plugin (wrapper script as {@code <binDir>/nodemesh}, its jars
 * in {@code <binDir>/nodemesh-lib}), writes nodemesh's own network config that the runtime picks
 * instead of the primary's, keeps it in step with the primary while watching, and undoes all of it
 * on uninstall.
 *
 * <p>The runtime uses the lexically first {@code .conf}, {@code .conflist} or {@code .json} file in
 * the conf dir (libcni's ConfFiles, sorted by bytes). The <em>primary</em> is the first such file
 * that is not ours: the network the runtime would use without nodemesh. Ours is {@code <primary's
 * name without extension>-nodemesh.conflist}: the primary's plugins (a single-plugin config turned
 * into a list, as libcni does) with nodemesh chained last, under the primary's network {@code
 * name}, {@code cniVersion} and file mode. It always sorts right before the primary ({@code '-'} is
 * below {@code '.'}), so it is the file the runtime picks.
 *
 * <p>Why a file of our own rather than editing the primary in place (the way Istio's install-cni
 * changed to in 2025, istio/istio#56156): a primary CNI rewrites its file whenever it likes (Cilium
 * at every agent start, in any shape: a {@code .conf} beside the {@code .conflist} an in-place edit
 * made, a rename, a new higher-priority file such as Multus'); an in-place edit then loses nodemesh
 * until the watch notices, or cannot be made at all. With our own file nothing the primary does
 * touches it: each pass re-derives it from whatever file is now first, renaming it when the primary
 * changes name, and removing it when there is no primary (so the node never looks network-ready on
 * a stale copy). The primary's file is never written, so uninstall (deleting ours) leaves it
 * byte-identical. Limits: between the primary rewriting its content and the next pass (an inotify
 * event, at worst the poll) pods get the primary's previous plugins plus nodemesh; a primary whose
 * own file name ends in {@code -nodemesh.conflist} is taken for ours.
 *
 * <p>Files are written as a temp file in the same dir (named {@code .*.tmp}, which no runtime
 * reads) renamed over the target.
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

  /** How our own network config's file name ends. */
  public static final String OWN_SUFFIX = "-" + ConfListEdit.TYPE + ".conflist";

  static final String LIB = "nodemesh-lib";

  /** How long the conf dir must hold no primary before ours is removed. */
  static final Duration NO_PRIMARY_GRACE = Duration.ofMillis(500);

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

  /**
   * The primary network config in {@code confDir}: the file the runtime would use without nodemesh
   * (the lexically first config file that is not ours), or null if there is none yet.
   */
  public static @Nullable Path primary(Path confDir) throws IOException {
    return primaryOf(stableConfFiles(confDir));
  }

  private static @Nullable Path primaryOf(List<Path> files) {
    Path primary = files.stream().filter(p -> !isOwn(p)).findFirst().orElse(null);
    // A directory listing that races a rename over one of its files may miss that file (POSIX
    // leaves it unspecified; tmpfs does miss it), while a stat of the path never does. A file of
    // ours names the primary it was made for: if that one exists and sorts first, the listing
    // missed it, and acting on the listing would move ours behind an unmeshed primary.
    for (Path f : files) {
      if (isOwn(f)) {
        Path q = existingPrimaryOf(f, primary);
        if (q != null) {
          primary = q;
        }
      }
    }
    return primary;
  }

  /**
   * The primary that our file {@code own} was made for, if it exists (by stat) and sorts before
   * {@code than} (any, when null); else null.
   */
  private static @Nullable Path existingPrimaryOf(Path own, @Nullable Path than) {
    String n = own.getFileName().toString();
    String base = n.substring(0, n.length() - OWN_SUFFIX.length());
    for (String ext : EXTENSIONS) {
      Path q = own.resolveSibling(base + ext);
      if (!isOwn(q)
          && Files.isRegularFile(q)
          && (than == null
              || q.getFileName().toString().compareTo(than.getFileName().toString()) < 0)) {
        return q;
      }
    }
    return null;
  }

  /**
   * Lists until two listings in a row agree (at most a few times): a rename racing one listing is
   * unlikely to make two consecutive ones miss the same way.
   */
  private static List<Path> stableConfFiles(Path confDir) throws IOException {
    List<Path> last = confFiles(confDir);
    for (int i = 0; i < 5; i++) {
      List<Path> again = confFiles(confDir);
      if (again.equals(last)) {
        return again;
      }
      last = again;
    }
    return last;
  }

  /** The file the runtime picks: the lexically first config file, ours or not. */
  public static @Nullable Path runtimePick(Path confDir) throws IOException {
    List<Path> files = confFiles(confDir);
    return files.isEmpty() ? null : files.get(0);
  }

  /** Our own config for {@code primary}: same base name, sorting right before it. */
  public static Path ownPath(Path primary) {
    String n = primary.getFileName().toString();
    return primary.resolveSibling(n.substring(0, n.lastIndexOf('.')) + OWN_SUFFIX);
  }

  static boolean isOwn(Path p) {
    return p.getFileName().toString().endsWith(OWN_SUFFIX);
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

  /**
   * Brings our own config in step with the primary: writes it if it is missing or differs, removes
   * ours that belong to an earlier primary, and removes all of ours when there is no primary.
   */
  public Result insert() throws IOException, ConfListEdit.Refused {
    List<Path> files = stableConfFiles(s.confDir());
    Path primary = primaryOf(files);
    if (primary == null) {
      if (files.stream().noneMatch(InstallCni::isOwn)) {
        return Result.NO_CONFIG;
      }
      // A writer that replaces its file by delete-then-create (as Java's non-atomic move does)
      // leaves the dir without a primary for a moment: only an absence that lasts removes ours.
      long until = System.nanoTime() + NO_PRIMARY_GRACE.toNanos();
      while (primary == null && System.nanoTime() < until) {
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          return Result.UNCHANGED;
        }
        files = stableConfFiles(s.confDir());
        primary = primaryOf(files);
      }
      if (primary == null) {
        return removeOwn(files, null) ? Result.WRITTEN : Result.NO_CONFIG;
      }
    }
    // An entry an earlier, in-place install left in the primary is dropped from ours by insert.
    ConfListEdit.Outcome o = ConfListEdit.insert(read(primary), s.pluginConf());
    byte[] want = render(o.conflist());
    Path own = ownPath(primary);
    Set<PosixFilePermission> mode = Files.getPosixFilePermissions(primary);
    boolean changed = false;
    if (!Files.isRegularFile(own, LinkOption.NOFOLLOW_LINKS)
        || !Arrays.equals(Files.readAllBytes(own), want)
        || !Files.getPosixFilePermissions(own).equals(mode)) {
      // Written before the old one goes, so some file chaining nodemesh is always first.
      writeAtomically(own, want, mode);
      log.accept("wrote " + own + ": the plugins of " + primary + ", then nodemesh");
      changed = true;
    }
    changed |= removeOwn(files, primary);
    return changed ? Result.WRITTEN : Result.UNCHANGED;
  }

  /**
   * Deletes every config of ours in {@code files} except the one for {@code primary}, decided on
   * the same listing as the primary was; true if it deleted any. One whose primary exists after all
   * (a stat, just before deleting) is kept: that listing missed it, and the next pass decides
   * again.
   */
  private boolean removeOwn(List<Path> files, @Nullable Path primary) throws IOException {
    Path keep = primary == null ? null : ownPath(primary);
    boolean removed = false;
    for (Path f : files) {
      if (isOwn(f) && !f.equals(keep)) {
        if (existingPrimaryOf(f, primary) != null) {
          continue;
        }
        Files.deleteIfExists(f);
        log.accept("removed " + f + (keep == null ? ": no primary config" : ": primary changed"));
        removed = true;
      }
    }
    return removed;
  }

  /**
   * Removes our own configs (the primary's file was never touched, so it is as its CNI left it),
   * nodemesh entries an earlier in-place install left in other configs, and the plugin from the bin
   * dir.
   */
  public void uninstall() throws IOException {
    for (Path f : confFiles(s.confDir())) {
      if (isOwn(f)) {
        Files.deleteIfExists(f);
        log.accept("removed " + f);
      }
    }
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
        log.accept("removed nodemesh from " + f + " (an earlier in-place install)");
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
            log.accept("refusing the primary CNI config: " + why);
            lastRefusal = why;
          }
        } catch (IOException e) {
          // A file that went away between the listing and its read (the primary CNI mid-rename):
          // the event that follows, or the poll, brings the next pass.
          String why = "I/O: " + e;
          if (!why.equals(lastRefusal)) {
            log.accept("pass failed, retrying on the next change: " + e);
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
      JsonNode n = JsonTrees.read(Files.readAllBytes(f));
      if (n == null) {
        throw new ConfListEdit.Refused(f + " is empty");
      }
      return n;
    } catch (dev.nodemesh.model.cni.MalformedJsonException e) {
      throw new ConfListEdit.Refused(f + " is not valid JSON: " + e.getMessage());
    }
  }

  private static byte[] render(ObjectNode conf) throws IOException {
    return (JsonTrees.writePretty(conf) + "\n").getBytes(java.nio.charset.StandardCharsets.UTF_8);
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
            LinkOption.NOFOLLOW_LINKS);
      }
    }
  }

  private static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (Stream<Path> w = Files.walk(dir)) {
      for (Path p : w.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
