package dev.nodemesh.control.source;

import com.google.protobuf.Message;
import dev.nodemesh.control.enrolment.EnrolmentRegistry;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.InputSlot;
import dev.nodemesh.model.kind.Inputs;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.model.load.ConfigLoader.FileContent;
import dev.nodemesh.model.load.ConfigLoader.Loaded;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Local mode's source: a directory of Kubernetes-shaped YAML, parsed by the node proxy's own loader
 * ({@link ConfigLoader#loadFile}) so a user's files mean the same with or without a control plane.
 *
 * <p>Unlike the proxy's loader, which takes a directory whole, each file is accepted or ignored
 * whole: a broken file is reported (file, field path, and line for syntax errors) and its last good
 * content stays, while the other files' changes go through. A changed file whose objects clash with
 * another file's (same name, same IP) is refused the same way. Every workload counts as ready.
 *
 * <p>The directory is polled (names, sizes and modification times) every {@code pollMillis} on the
 * {@code nodemesh-local-source} thread, which also parses; the store only sees the merged result,
 * posted as one task. Limits: no subdirectories, no EndpointSlices (Services select by labels).
 */
public final class LocalSource implements Source {
  private static final Logger log = LoggerFactory.getLogger(LocalSource.class);

  /** The accepted content of one file, and the stamp it was read at. */
  private record FileState(String stamp, FileContent content) {}

  private final Path dir;
  private final long pollMillis;
  private final CaptureScope scope;
  private final @Nullable EnrolmentRegistry enrolments;
  // Set by the first publish (the source's thread only): before it, a report has nothing to redo.
  private boolean publishedOnce;
  private final ScheduledExecutorService thread;
  private final Map<Path, FileState> accepted = new LinkedHashMap<>();
  private final Map<Path, String> rejectedStamps = new HashMap<>();
  private volatile List<String> errors = List.of();
  private volatile boolean ready;
  private @Nullable ResourceStore store;
  private @Nullable Executor executor;

  public LocalSource(Path dir, long pollMillis) {
    this(dir, pollMillis, CaptureScope.DEFAULT);
  }

  /**
   * @param scope the pods the CNI plugins leave alone: their workloads go out uncaptured
   */
  public LocalSource(Path dir, long pollMillis, CaptureScope scope) {
    this(dir, pollMillis, scope, null);
  }

  /**
   * @param enrolments when given, a workload in the scope is captured only once its node's proxy
   *     reports it enrolled (a pod the YAML lists but no proxy enrolled goes out uncaptured); each
   *     report that changes something publishes the directory again. Null: capture follows the
   *     scope alone (local mode enrols every listed pod through its CNI chain).
   */
  public LocalSource(
      Path dir, long pollMillis, CaptureScope scope, @Nullable EnrolmentRegistry enrolments) {
    this.enrolments = enrolments;
    this.dir = dir;
    this.pollMillis = pollMillis;
    this.scope = scope;
    this.thread =
        Executors.newSingleThreadScheduledExecutor(
            r -> {
              Thread t = new Thread(r, "nodemesh-local-source");
              t.setDaemon(true);
              return t;
            });
  }

  @Override
  public void start(ResourceStore store, Executor executor) throws IOException {
    if (!Files.isDirectory(dir)) {
      throw new IOException(dir + ": not a directory");
    }
    this.store = store;
    this.executor = executor;
    thread.scheduleWithFixedDelay(this::scanSafely, 0, pollMillis, TimeUnit.MILLISECONDS);
    EnrolmentRegistry e = enrolments;
    if (e != null) {
      e.onChange(node -> thread.execute(this::republish));
    }
  }

  @Override
  public @Nullable EnrolmentRegistry enrolments() {
    return enrolments;
  }

  /** The accepted files again, after an enrolment report (on the source's thread). */
  private void republish() {
    if (publishedOnce) {
      publish(List.copyOf(accepted.keySet()));
    }
  }

  @Override
  public boolean ready() {
    return ready;
  }

  @Override
  public String describe() {
    return "dir:" + dir;
  }

  /** The problems found by the latest scan that found any, one line each (for tests, status). */
  public List<String> errors() {
    return errors;
  }

  private void scanSafely() {
    try {
      scan();
    } catch (RuntimeException | IOException e) {
      // A loader bug or a vanished directory must not stop later scans.
      log.warn("{}: scan failed, the last good config stays: {}", dir, e.toString());
    }
  }

  /** One round: re-read changed files, check them against the rest, publish if anything moved. */
  void scan() throws IOException {
    List<Path> files = ConfigLoader.yamlFiles(dir);
    boolean changed = accepted.keySet().retainAll(Set.copyOf(files));
    rejectedStamps.keySet().retainAll(Set.copyOf(files));
    Map<Path, FileState> candidates = new LinkedHashMap<>();
    List<String> problems = new ArrayList<>();
    for (Path f : files) {
      String stamp = stamp(f);
      FileState old = accepted.get(f);
      if ((old != null && old.stamp().equals(stamp)) || stamp.equals(rejectedStamps.get(f))) {
        continue;
      }
      try {
        candidates.put(f, new FileState(stamp, ConfigLoader.loadFile(f)));
      } catch (ConfigException e) {
        rejectedStamps.put(f, stamp);
        problems.addAll(e.errors());
        log.warn(
            "{}: ignored, its last good version stays:\n  {}", f, String.join("\n  ", e.errors()));
      }
    }
    if (!candidates.isEmpty()) {
      Map<Path, FileState> next = new LinkedHashMap<>(accepted);
      next.putAll(candidates);
      String clash = clash(files, next);
      if (clash != null) {
        // Which of the changed files is at fault is not always clear (two files may name the same
        // pod); refusing all of this round's changes keeps what ran before.
        candidates.forEach((f, st) -> rejectedStamps.put(f, st.stamp()));
        problems.add(clash + " (changed files refused: " + names(candidates.keySet()) + ")");
        log.warn("{}: {}; changed files refused, the last good versions stay", dir, clash);
      } else {
        accepted.putAll(candidates);
        candidates.keySet().forEach(rejectedStamps::remove);
        changed = true;
      }
    }
    if (!problems.isEmpty()) {
      errors = List.copyOf(problems);
    } else if (changed) {
      errors = List.of();
    }
    if (changed || !ready) {
      publish(files);
    }
  }

  private void publish(List<Path> files) {
    publishedOnce = true;
    List<FileContent> contents = new ArrayList<>();
    for (Path f : files) {
      FileState st = accepted.get(f);
      if (st != null) {
        contents.add(st.content());
      }
    }
    // Resolved against the input-only records of every file (a route against the ReferenceGrants),
    // as the proxy's own local loader does.
    Inputs inputs =
        new Inputs() {
          @Override
          public <R> List<R> of(InputSlot<R> slot) {
            List<R> out = new ArrayList<>();
            contents.forEach(c -> out.addAll(c.of(slot)));
            return out;
          }
        };
    Map<ResourceType, Map<String, Message>> next = new LinkedHashMap<>();
    for (ResourceType type : ResourceType.values()) {
      next.put(type, resources(type.kind(), contents, inputs));
    }
    ResourceStore s = Objects.requireNonNull(store);
    Objects.requireNonNull(executor)
        .execute(
            () -> {
              next.forEach(s::replaceAll);
              ready = true;
            });
  }

  /** The resources of {@code kind} in {@code contents}, by name. */
  private <R> Map<String, Message> resources(
      ResourceKind<?, R> kind, List<FileContent> contents, Inputs inputs) {
    Map<String, Message> out = new HashMap<>();
    for (FileContent c : contents) {
      for (Loaded<?> l : c.objects()) {
        if (l.kind().slot().equals(kind)) {
          // Captured or not is the capture scope's to say, not the YAML's.
          Object v = l.value() instanceof Workload w ? captured(w) : l.value();
          @SuppressWarnings("unchecked") // an object whose kind feeds ResourceKind<?, R> is an R
          R value = (R) v;
          out.put(l.resourceName(), kind.encode(kind.resolve(value, inputs)));
        }
      }
    }
    return out;
  }

  /** {@code w} as the scope and, when gated, its node's enrolment report say. */
  private Workload captured(Workload w) {
    Workload scoped = scope.apply(w);
    EnrolmentRegistry e = enrolments;
    return e == null || !scoped.captured() || e.enrolled(w.nodeName(), w.uid())
        ? scoped
        : scoped.withCaptured(false);
  }

  /** The first rule across files that {@code next} breaks, or null. */
  private static @Nullable String clash(List<Path> order, Map<Path, FileState> next) {
    Map<String, Path> names = new HashMap<>();
    List<FileContent> contents = new ArrayList<>();
    for (Path f : order) {
      FileState st = next.get(f);
      if (st == null) {
        continue;
      }
      contents.add(st.content());
      for (Loaded<?> l : st.content().objects()) {
        // Per kind: an HTTPRoute and a GRPCRoute may share a name, as in Kubernetes.
        String what = l.kind().kind() + " " + l.id();
        Path other = names.putIfAbsent(what, f);
        if (other != null) {
          return f.getFileName() + ": " + what + ": also in " + other.getFileName();
        }
      }
    }
    try {
      // The proxy's own cross-object rules (IPs, VIPs, one policy each, names).
      ResourceKinds.snapshot(
          0,
          new ResourceKinds.Values() {
            @Override
            public <R> List<R> of(ResourceKind<?, R> kind) {
              List<R> values = new ArrayList<>();
              contents.forEach(c -> values.addAll(c.of(kind)));
              return values;
            }
          });
      return null;
    } catch (IllegalArgumentException e) {
      return "files clash: " + e.getMessage();
    }
  }

  private static String names(Set<Path> files) {
    List<String> n = new ArrayList<>();
    files.forEach(f -> n.add(f.getFileName().toString()));
    return String.join(", ", n);
  }

  private static String stamp(Path f) throws IOException {
    return Files.size(f) + "@" + Files.getLastModifiedTime(f).toInstant();
  }

  @Override
  public void close() {
    thread.shutdownNow();
  }
}
