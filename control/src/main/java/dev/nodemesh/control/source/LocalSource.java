package dev.nodemesh.control.source;

import com.google.protobuf.Message;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.capture.CaptureScope;
import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigException;
import dev.nodemesh.model.config.ConfigLoader;
import dev.nodemesh.model.config.ConfigLoader.FileContent;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.HttpFault;
import dev.nodemesh.model.config.HttpRoute;
import dev.nodemesh.model.config.MeshService;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.ReferenceGrant;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.proto.ProtoEncoder;
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
    Map<String, Message> workloads = new HashMap<>();
    Map<String, Message> services = new HashMap<>();
    Map<String, Message> policies = new HashMap<>();
    Map<String, Message> peerAuthns = new HashMap<>();
    Map<String, Message> routes = new HashMap<>();
    Map<String, Message> trafficPolicies = new HashMap<>();
    Map<String, Message> faults = new HashMap<>();
    List<ReferenceGrant> grants = new ArrayList<>();
    for (Path f : files) {
      FileState st = accepted.get(f);
      if (st != null) {
        grants.addAll(st.content().referenceGrants());
      }
    }
    for (Path f : files) {
      FileState st = accepted.get(f);
      if (st == null) {
        continue;
      }
      for (Workload w : st.content().workloads()) {
        workloads.put(
            ProtoEncoder.name(w.namespace(), w.name()),
            ProtoEncoder.workload(scope.apply(w), true));
      }
      for (MeshService s : st.content().services()) {
        services.put(ProtoEncoder.name(s.namespace(), s.name()), ProtoEncoder.service(s, Set.of()));
      }
      for (AuthorizationPolicy p : st.content().authorizationPolicies()) {
        policies.put(
            ProtoEncoder.name(p.namespace(), p.name()), ProtoEncoder.authorizationPolicy(p));
      }
      for (PeerAuthentication p : st.content().peerAuthentications()) {
        peerAuthns.put(
            ProtoEncoder.name(p.namespace(), p.name()), ProtoEncoder.peerAuthentication(p));
      }
      for (HttpRoute r : st.content().httpRoutes()) {
        // Checked against the grants of every file, as the proxy's own local loader does.
        routes.put(
            ProtoEncoder.routeName(r), ProtoEncoder.httpRoute(ReferenceGrant.apply(r, grants)));
      }
      for (TrafficPolicy p : st.content().trafficPolicies()) {
        trafficPolicies.put(
            ProtoEncoder.name(p.namespace(), p.name()), ProtoEncoder.trafficPolicy(p));
      }
      for (HttpFault h : st.content().httpFaults()) {
        faults.put(ProtoEncoder.name(h.namespace(), h.name()), ProtoEncoder.httpFault(h));
      }
    }
    ResourceStore s = Objects.requireNonNull(store);
    Objects.requireNonNull(executor)
        .execute(
            () -> {
              s.replaceAll(ResourceType.WORKLOAD, workloads);
              s.replaceAll(ResourceType.SERVICE, services);
              s.replaceAll(ResourceType.AUTHORIZATION_POLICY, policies);
              s.replaceAll(ResourceType.PEER_AUTHENTICATION, peerAuthns);
              s.replaceAll(ResourceType.HTTP_ROUTE, routes);
              s.replaceAll(ResourceType.TRAFFIC_POLICY, trafficPolicies);
              s.replaceAll(ResourceType.HTTP_FAULT, faults);
              ready = true;
            });
  }

  /** The first rule across files that {@code next} breaks, or null. */
  private static @Nullable String clash(List<Path> order, Map<Path, FileState> next) {
    Map<String, Path> names = new HashMap<>();
    List<Workload> workloads = new ArrayList<>();
    List<MeshService> services = new ArrayList<>();
    List<AuthorizationPolicy> policies = new ArrayList<>();
    List<PeerAuthentication> peerAuthns = new ArrayList<>();
    List<HttpRoute> routes = new ArrayList<>();
    List<TrafficPolicy> trafficPolicies = new ArrayList<>();
    List<HttpFault> faults = new ArrayList<>();
    for (Path f : order) {
      FileState st = next.get(f);
      if (st == null) {
        continue;
      }
      for (Workload w : st.content().workloads()) {
        Path other = names.putIfAbsent("Pod " + w.id(), f);
        if (other != null) {
          return f.getFileName() + ": Pod " + w.id() + ": also in " + other.getFileName();
        }
        workloads.add(w);
      }
      for (MeshService s : st.content().services()) {
        Path other = names.putIfAbsent("Service " + s.id(), f);
        if (other != null) {
          return f.getFileName() + ": Service " + s.id() + ": also in " + other.getFileName();
        }
        services.add(s);
      }
      for (AuthorizationPolicy p : st.content().authorizationPolicies()) {
        Path other = names.putIfAbsent("AuthorizationPolicy " + p.id(), f);
        if (other != null) {
          return f.getFileName()
              + ": AuthorizationPolicy "
              + p.id()
              + ": also in "
              + other.getFileName();
        }
        policies.add(p);
      }
      for (PeerAuthentication p : st.content().peerAuthentications()) {
        Path other = names.putIfAbsent("PeerAuthentication " + p.id(), f);
        if (other != null) {
          return f.getFileName()
              + ": PeerAuthentication "
              + p.id()
              + ": also in "
              + other.getFileName();
        }
        peerAuthns.add(p);
      }
      for (HttpRoute r : st.content().httpRoutes()) {
        // Per kind: an HTTPRoute and a GRPCRoute may share a name, as in Kubernetes.
        Path other = names.putIfAbsent(r.kind() + " " + r.id(), f);
        if (other != null) {
          return f.getFileName()
              + ": "
              + r.kind()
              + " "
              + r.id()
              + ": also in "
              + other.getFileName();
        }
        routes.add(r);
      }
      for (TrafficPolicy p : st.content().trafficPolicies()) {
        Path other = names.putIfAbsent("TrafficPolicy " + p.id(), f);
        if (other != null) {
          return f.getFileName() + ": TrafficPolicy " + p.id() + ": also in " + other.getFileName();
        }
        trafficPolicies.add(p);
      }
      for (HttpFault h : st.content().httpFaults()) {
        Path other = names.putIfAbsent("HTTPFault " + h.id(), f);
        if (other != null) {
          return f.getFileName() + ": HTTPFault " + h.id() + ": also in " + other.getFileName();
        }
        faults.add(h);
      }
      for (ReferenceGrant g : st.content().referenceGrants()) {
        Path other = names.putIfAbsent("ReferenceGrant " + g.id(), f);
        if (other != null) {
          return f.getFileName()
              + ": ReferenceGrant "
              + g.id()
              + ": also in "
              + other.getFileName();
        }
      }
    }
    try {
      new ConfigSnapshot(
          0,
          workloads,
          services,
          policies,
          peerAuthns,
          routes,
          trafficPolicies,
          faults); // the proxy's own cross-object rules (IPs, VIPs, one policy each, names)
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
