package dev.nodemesh.scripts.local;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Local mode's JDK 25 AOT cache for the node proxies (JEP 483 classes loaded and linked, JEP 514
 * one-step training, JEP 515 method profiles): about halves the JVM's share of a proxy's start
 * (README, "Footprint, start-up"). Trained once, reused: {@code nodemesh-proxy.aot} next to the
 * launcher's jar. When it is missing or older than a jar of the class path, node 1's proxy trains
 * it ({@code -XX:AOTCacheOutput}, into a file of its own that the JVM writes as it exits: the
 * proxy's whole start, re-enrolments included, and whatever traffic it carried), and {@code local
 * down} gives that proxy time to write it and then puts it in place (rename, so no start ever maps
 * half a cache); the next {@code local up} uses it ({@code -XX:AOTCache}).
 *
 * <p>Never a reason not to start: the JVM (AOTMode auto) starts without a cache it cannot use
 * (missing, stale, another JDK or other flags) after an {@code [aot]} warning in the proxy's log;
 * an older JDK, or a class path with directories (tests run from {@code target/classes}, which an
 * AOT cache cannot cover), gets no AOT option at all.
 */
final class ProxyAotCache {
  static final String FILE = "nodemesh-proxy.aot";
  private static final String OUTPUT = "-XX:AOTCacheOutput=";
  private static final String TRAINING = ".training";

  private ProxyAotCache() {}

  /** The cache for {@code classPath}, or empty where this JDK or class path cannot have one. */
  static Optional<Path> forClassPath(String classPath, int jdkFeature) {
    if (jdkFeature < 25 || classPath.isEmpty()) {
      return Optional.empty();
    }
    List<Path> jars = jars(classPath);
    if (jars.isEmpty()) {
      return Optional.empty();
    }
    Path dir = jars.get(0).toAbsolutePath().getParent();
    return dir == null ? Optional.empty() : Optional.of(dir.resolve(FILE));
  }

  /** Every entry a jar that exists, else empty (a directory or a missing entry: no cache). */
  private static List<Path> jars(String classPath) {
    List<Path> jars = new ArrayList<>();
    for (String e : classPath.split(File.pathSeparator, -1)) {
      Path p = Path.of(e);
      if (!e.endsWith(".jar") || !Files.isRegularFile(p)) {
        return List.of();
      }
      jars.add(p);
    }
    return jars;
  }

  /**
   * The JVM options of one proxy: use the cache when it is newer than every jar; else, for the
   * {@code trainer} (node 1), train it; else none.
   */
  static List<String> options(Path cache, String classPath, boolean trainer) throws IOException {
    if (fresh(cache, classPath)) {
      return List.of("-XX:AOTCache=" + cache);
    }
    return trainer ? List.of(OUTPUT + cache + TRAINING) : List.of();
  }

  private static boolean fresh(Path cache, String classPath) throws IOException {
    if (!Files.isRegularFile(cache)) {
      return false;
    }
    FileTime made = Files.getLastModifiedTime(cache);
    for (Path jar : jars(classPath)) {
      if (Files.getLastModifiedTime(jar).compareTo(made) > 0) {
        return false;
      }
    }
    return true;
  }

  /** The file a proxy started with {@code argv} trains into, if it trains one. */
  static Optional<Path> training(List<String> argv) {
    for (String a : argv) {
      if (a.startsWith(OUTPUT) && a.endsWith(TRAINING)) {
        return Optional.of(Path.of(a.substring(OUTPUT.length())));
      }
    }
    return Optional.empty();
  }

  /** {@code argv} without the option that trains the cache. */
  static List<String> withoutTraining(List<String> argv) {
    return argv.stream().filter(a -> !(a.startsWith(OUTPUT) && a.endsWith(TRAINING))).toList();
  }

  /**
   * After the training proxy exited: puts what it wrote in place of the cache (atomically), or
   * leaves things as they were when it wrote nothing (stopped before it could). Returns the cache
   * when one was put in place.
   */
  static Optional<Path> publish(Path training) throws IOException {
    String name = training.getFileName().toString();
    Path cache = training.resolveSibling(name.substring(0, name.length() - TRAINING.length()));
    Files.deleteIfExists(training.resolveSibling(name + ".config")); // the JVM's own leftover
    if (!Files.isRegularFile(training) || Files.size(training) == 0) {
      Files.deleteIfExists(training);
      return Optional.empty();
    }
    Files.move(
        training, cache, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    return Optional.of(cache);
  }
}
