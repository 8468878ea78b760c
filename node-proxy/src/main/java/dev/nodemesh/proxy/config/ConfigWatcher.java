package dev.nodemesh.proxy.config;

import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import java.io.IOException;
import java.nio.file.ClosedWatchServiceException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardWatchEventKinds;
import java.nio.file.WatchKey;
import java.nio.file.WatchService;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Keeps a config directory and the proxy in step: loads it at start, then reloads after changes and
 * hands each accepted snapshot (version = previous + 1) to a consumer. A rejected directory never
 * reaches the consumer; the previous snapshot stays in force and the error callback hears why. A
 * reload whose content equals the current snapshot is dropped, so touching a file does not bump the
 * version.
 *
 * <p>One daemon thread does everything, so the consumer is never called concurrently. Change
 * detection is a {@link WatchService} plus a poll of the files' names, sizes and modification times
 * every {@value #POLL_MILLIS} ms, because WatchService misses some editors' rename-over saves and
 * ConfigMap symlink swaps; events are debounced by {@value #DEBOUNCE_MILLIS} ms so an editor's
 * burst of writes is one reload. Not watched: subdirectories.
 */
public final class ConfigWatcher implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(ConfigWatcher.class);
  static final long POLL_MILLIS = 2000;
  static final long DEBOUNCE_MILLIS = 200;
  private static final int MAX_DEBOUNCE_ROUNDS = 25;

  private final Path dir;
  private final CaptureScope scope;
  private final Consumer<ConfigSnapshot> onSnapshot;
  private final Consumer<ConfigException> onError;
  private final WatchService watchService;
  private final Thread thread;
  private volatile ConfigSnapshot current;
  private volatile boolean closed;
  private @Nullable WatchKey key;
  private List<String> fingerprint;

  private ConfigWatcher(
      Path dir,
      CaptureScope scope,
      Consumer<ConfigSnapshot> onSnapshot,
      Consumer<ConfigException> onError,
      ConfigSnapshot initial,
      List<String> fingerprint)
      throws IOException {
    this.dir = dir;
    this.scope = scope;
    this.onSnapshot = onSnapshot;
    this.onError = onError;
    this.current = initial;
    this.fingerprint = fingerprint;
    this.watchService = dir.getFileSystem().newWatchService();
    this.key = register();
    this.thread = new Thread(this::run, "nodemesh-config-watcher");
    thread.setDaemon(true);
  }

  /**
   * Loads {@code dir} as version 1, gives it to {@code onSnapshot} on the calling thread, and
   * starts watching. Later snapshots and errors are delivered on the watcher's thread.
   *
   * @throws ConfigException if the directory is invalid at start: there is nothing to fall back to,
   *     so the caller must decide
   */
  public static ConfigWatcher start(
      Path dir, Consumer<ConfigSnapshot> onSnapshot, Consumer<ConfigException> onError)
      throws ConfigException, IOException {
    return start(dir, CaptureScope.DEFAULT, onSnapshot, onError);
  }

  /**
   * As above; the workloads {@code scope} excludes are marked uncaptured in every snapshot (the
   * directory names pods, not whether the CNI plugin enrols them: that is the scope's to say).
   */
  public static ConfigWatcher start(
      Path dir,
      CaptureScope scope,
      Consumer<ConfigSnapshot> onSnapshot,
      Consumer<ConfigException> onError)
      throws ConfigException, IOException {
    Objects.requireNonNull(onSnapshot, "onSnapshot");
    Objects.requireNonNull(onError, "onError");
    List<String> fingerprint = fingerprint(dir);
    ConfigSnapshot initial = scope.apply(ConfigLoader.load(dir, 1));
    ConfigWatcher watcher =
        new ConfigWatcher(dir, scope, onSnapshot, onError, initial, fingerprint);
    log.info("{} from {}", initial.describe(), dir);
    onSnapshot.accept(initial);
    watcher.thread.start();
    return watcher;
  }

  /** The snapshot most recently accepted. */
  public ConfigSnapshot current() {
    return current;
  }

  @Override
  public void close() {
    closed = true;
    thread.interrupt();
    try {
      watchService.close();
    } catch (IOException e) {
      log.debug("closing the watch service of {}", dir, e);
    }
    if (Thread.currentThread() != thread) {
      try {
        thread.join(TimeUnit.SECONDS.toMillis(5));
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
  }

  private void run() {
    try {
      while (!closed) {
        boolean changed = awaitEvents(POLL_MILLIS);
        if (changed) {
          // Debounce: drain until the directory has been quiet for a moment, but give up waiting
          // after a while so a file that is written non-stop cannot starve reloads.
          for (int i = 0; i < MAX_DEBOUNCE_ROUNDS && awaitEvents(DEBOUNCE_MILLIS); i++) {}
        }
        List<String> now = fingerprint(dir);
        if (changed || !now.equals(fingerprint)) {
          fingerprint = now;
          reload();
        }
      }
    } catch (InterruptedException | ClosedWatchServiceException e) {
      // close() was called.
    } catch (RuntimeException e) {
      if (!closed) {
        log.error("config watcher for {} stopped; config stays at {}", dir, current.describe(), e);
      }
    }
  }

  /** Waits up to {@code millis} for directory events; true if any arrived. */
  private boolean awaitEvents(long millis) throws InterruptedException {
    if (key == null || !key.isValid()) {
      key = register(); // the directory was removed; pick it up again once it is back
    }
    WatchKey signalled = watchService.poll(millis, TimeUnit.MILLISECONDS);
    if (signalled == null) {
      return false;
    }
    signalled.pollEvents();
    signalled.reset();
    return true;
  }

  private @Nullable WatchKey register() {
    try {
      return dir.register(
          watchService,
          StandardWatchEventKinds.ENTRY_CREATE,
          StandardWatchEventKinds.ENTRY_MODIFY,
          StandardWatchEventKinds.ENTRY_DELETE);
    } catch (IOException e) {
      log.debug("cannot watch {} (the mtime poll still runs): {}", dir, e.toString());
      return null;
    }
  }

  private void reload() {
    ConfigSnapshot previous = current;
    ConfigSnapshot next;
    try {
      next = scope.apply(ConfigLoader.load(dir, previous.version() + 1));
    } catch (RuntimeException bug) {
      // A loader bug must not stop the watcher; treat it as a rejection so the old config stays.
      log.error("loading {} failed unexpectedly", dir, bug);
      deliver(onError, new ConfigException(List.of(dir + ": internal error: " + bug)));
      return;
    } catch (ConfigException e) {
      log.warn(
          "config rejected: {}; keeping version {}",
          String.join("; ", e.errors()),
          previous.version());
      deliver(onError, e);
      return;
    }
    if (next.sameContent(previous)) {
      log.debug("{} changed but its content did not; staying at {}", dir, previous.version());
      return;
    }
    current = next;
    log.info("{} from {}", next.describe(), dir);
    deliver(onSnapshot, next);
  }

  /** A throwing callback must not stop the watcher: later changes still have to be seen. */
  private <T> void deliver(Consumer<T> callback, T value) {
    try {
      callback.accept(value);
    } catch (RuntimeException e) {
      log.error("config callback failed", e);
    }
  }

  /**
   * Names, sizes and modification times of the files a load would read; a change in any of them
   * means a reload. Unreadable or missing directory: empty, so its reappearance is a change.
   */
  private static List<String> fingerprint(Path dir) {
    List<String> out = new ArrayList<>();
    try {
      for (Path p : ConfigLoader.yamlFiles(dir)) {
        out.add(p.getFileName() + ":" + Files.size(p) + ":" + Files.getLastModifiedTime(p));
      }
    } catch (IOException e) {
      out.clear();
    }
    return out;
  }
}
