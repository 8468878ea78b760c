package dev.nodemesh.proxy.agent;

import dev.nodemesh.bpf.conntrack.StaleConntrack;
import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.intercept.Interception;
import dev.nodemesh.proxy.listener.PodListeners;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Enrols and removes pods: opens the pod's namespace, creates the in-pod listeners, then installs
 * the redirect rules (in that order, so no connection is ever redirected to a port nobody listens
 * on). Any failure undoes the steps already taken and is reported to the caller.
 *
 * <p>Not thread-safe: the agent calls it from one thread only. {@link #addAll} runs the namespace,
 * listener and capture steps of many pods on a pool meanwhile, and still registers each on the
 * calling thread.
 */
public final class Enroller implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(Enroller.class);

  /** A request to enrol, before anything is opened. */
  public record PodSpec(
      String uid, String name, String namespace, String netnsPath, List<InetAddress> ips) {
    public PodSpec {
      ips = List.copyOf(ips);
    }
  }

  /** What AddPod did. */
  public enum Outcome {
    ADDED,
    UNCHANGED,
    REPLACED
  }

  private record Enrolment(EnrolledPod pod, PodListeners listeners) {}

  private final DataPlane plane;
  private final Interception interception;
  private final Map<String, Enrolment> enrolled = new HashMap<>();

  public Enroller(DataPlane plane, Interception interception) {
    this.plane = plane;
    this.interception = interception;
  }

  public Outcome add(PodSpec spec) throws IOException {
    long start = System.nanoTime();
    Enrolment existing = enrolled.get(spec.uid());
    NetworkNamespace netns = NetworkNamespace.open(Path.of(spec.netnsPath()));
    EnrolledPod pod =
        new EnrolledPod(
            spec.uid(), spec.name(), spec.namespace(), spec.netnsPath(), spec.ips(), netns);
    if (existing != null) {
      if (existing.pod().sameAs(pod)) {
        netns.close();
        return Outcome.UNCHANGED;
      }
      remove(spec.uid(), null);
    }
    commit(capture(pod, Prior.NONE, start));
    return existing == null ? Outcome.ADDED : Outcome.REPLACED;
  }

  /** One spec's result in {@link #addAll}: enrolled when {@code failure} is null. */
  public record Attempt(PodSpec spec, @Nullable IOException failure) {}

  /**
   * Enrols every spec as {@link #add} does, the namespace, listener and capture work of several at
   * once on {@code pool} (that work is mostly waiting for child processes and netlink), each
   * capture's first transaction written for {@code prior}. Call it on the agent thread: it waits
   * for all of them and registers each enrolled pod there ({@link EnrolmentBatch}), so whatever the
   * agent runs next (a DelPod, say) runs after the whole batch. One spec failing leaves the others
   * enrolled.
   *
   * @return one attempt per spec, in their order
   * @throws InterruptedIOException when this thread is interrupted (the proxy is closing): the
   *     captures still running are cancelled and what was opened for unregistered pods is closed
   */
  public List<Attempt> addAll(List<PodSpec> specs, Prior prior, ExecutorService pool)
      throws InterruptedIOException {
    return EnrolmentBatch.run(
        specs,
        pool,
        new EnrolmentBatch.Steps<Prepared>() {
          @Override
          public boolean enrolled(String uid) {
            return enrolled.containsKey(uid);
          }

          @Override
          public Prepared prepare(PodSpec spec) throws IOException {
            return Enroller.this.prepare(spec, prior);
          }

          @Override
          public void commit(Prepared p) {
            Enroller.this.commit(p);
          }

          @Override
          public void discard(Prepared p) {
            p.listeners().close();
            plane.release(p.pod());
            p.pod().netns().close();
          }

          @Override
          public void add(PodSpec spec) throws IOException {
            Enroller.this.add(spec);
          }
        });
  }

  /**
   * A pod whose listeners and capture are in place, not yet registered; with the {@link
   * System#nanoTime} at which each step began and the last ended, for the log.
   */
  private record Prepared(
      EnrolledPod pod,
      PodListeners listeners,
      long start,
      long opened,
      long listening,
      long captured,
      long cleared) {}

  /** Opens the namespace and {@link #capture}s: for a uid not enrolled, on any thread. */
  private Prepared prepare(PodSpec spec, Prior prior) throws IOException {
    long start = System.nanoTime();
    NetworkNamespace netns = NetworkNamespace.open(Path.of(spec.netnsPath()));
    return capture(
        new EnrolledPod(
            spec.uid(), spec.name(), spec.namespace(), spec.netnsPath(), spec.ips(), netns),
        prior,
        start);
  }

  /**
   * Creates the pod's listeners, installs its capture and clears its stale conntrack entries; on
   * failure undoes what it did (and closes the namespace) and throws. Touches nothing of this
   * class's own state, so several pods may be captured at once ({@link #addAll}).
   */
  private Prepared capture(EnrolledPod pod, Prior prior, long start) throws IOException {
    long opened = System.nanoTime();
    PodListeners listeners;
    try {
      listeners = PodListeners.open(plane, pod);
    } catch (IOException | RuntimeException e) {
      pod.netns().close();
      throw new IOException("enrolling " + pod + ": " + e.getMessage(), e);
    }
    long listening = System.nanoTime();
    try {
      interception.install(pod, listeners.inbound(), listeners.inbound6(), prior);
    } catch (IOException | RuntimeException e) {
      listeners.close();
      plane.release(pod);
      pod.netns().close();
      throw new IOException("enrolling " + pod + ": " + e.getMessage(), e);
    }
    long captured = System.nanoTime();
    clearStaleConntrack(pod);
    long cleared = System.nanoTime();
    return new Prepared(pod, listeners, start, opened, listening, captured, cleared);
  }

  /** Registers a captured pod; on the agent thread. */
  private void commit(Prepared p) {
    EnrolledPod pod = p.pod();
    enrolled.put(pod.uid(), new Enrolment(pod, p.listeners()));
    plane.pods().put(pod);
    long end = System.nanoTime();
    // The steps' times, because a pod start waits for all of them (issue 19's CNI ADD budget).
    log.info(
        "enrolled {} listening on {} in {} ms (netns {}, listeners {}, capture {}, conntrack {},"
            + " registry {})",
        pod,
        p.listeners().describe(),
        ms(end - p.start()),
        ms(p.opened() - p.start()),
        ms(p.listening() - p.opened()),
        ms(p.captured() - p.listening()),
        ms(p.cleared() - p.captured()),
        ms(end - p.cleared()));
  }

  /**
   * After capture is in place (so every later connection is captured), deletes the pod's conntrack
   * entries of connections that went to the service range untranslated, before capture: while one
   * lives, a new connection on the same ports skips the REDIRECT. A failure is logged, never fails
   * the enrolment: the pod is captured, only a connection reusing such ports may miss it until the
   * entry expires.
   */
  private void clearStaleConntrack(EnrolledPod pod) {
    if (plane.serviceRange().isEmpty()) {
      return;
    }
    try {
      int n = StaleConntrack.clear(pod.netns(), plane.serviceRange()::contains);
      if (n > 0) {
        log.info(
            "{}: cleared {} conntrack entries toward the service range {} made before capture",
            pod,
            n,
            plane.serviceRange());
      }
    } catch (IOException | RuntimeException e) {
      log.warn(
          "{}: could not clear conntrack entries toward the service range made before capture: {}",
          pod,
          e.toString());
    }
  }

  /**
   * Removes a pod's rules and listeners. Established connections keep running. An unknown uid with
   * a namespace path still gets its rules cleaned (the proxy may have restarted).
   *
   * <p>The interception is told even when the namespace path is already gone (the runtime deleted
   * the netns before the pod's DelPod): what it keeps outside the namespace (eBPF registrations and
   * pinned links, keyed by the netns cookie) must go all the same, and it knows how to do that
   * without entering the namespace.
   *
   * @return true if the pod was enrolled here
   */
  public boolean remove(String uid, @Nullable String netnsPathHint) throws IOException {
    Enrolment e = enrolled.remove(uid);
    if (e == null) {
      if (netnsPathHint != null && !netnsPathHint.isEmpty()) {
        interception.remove(Path.of(netnsPathHint));
      }
      return false;
    }
    long start = System.nanoTime();
    plane.pods().remove(uid);
    IOException failure = null;
    try {
      interception.remove(Path.of(e.pod().netnsPath()));
    } catch (IOException ex) {
      failure = ex;
    }
    long uncaptured = System.nanoTime();
    e.listeners().close();
    plane.release(e.pod());
    e.pod().netns().close();
    long end = System.nanoTime();
    log.info(
        "removed {} in {} ms (capture {}, listeners {})",
        e.pod(),
        ms(end - start),
        ms(uncaptured - start),
        ms(end - uncaptured));
    if (failure != null) {
      throw failure;
    }
    return true;
  }

  /** Nanoseconds as milliseconds with one decimal, for the log. */
  private static String ms(long nanos) {
    return String.format(Locale.ROOT, "%.1f", nanos / 1e6);
  }

  /** Makes the enrolled set exactly {@code pods}; returns {added, removed, unchanged}. */
  public int[] reconcile(List<PodSpec> pods) throws IOException {
    Set<String> wanted = new HashSet<>();
    for (PodSpec p : pods) {
      wanted.add(p.uid());
    }
    int removed = 0;
    for (String uid : new ArrayList<>(enrolled.keySet())) {
      if (!wanted.contains(uid)) {
        remove(uid, null);
        removed++;
      }
    }
    int added = 0;
    int unchanged = 0;
    List<String> failures = new ArrayList<>();
    for (PodSpec p : pods) {
      try {
        if (add(p) == Outcome.UNCHANGED) {
          unchanged++;
        } else {
          added++;
        }
      } catch (IOException e) {
        failures.add(e.getMessage());
      }
    }
    if (!failures.isEmpty()) {
      throw new IOException(String.join("; ", failures));
    }
    return new int[] {added, removed, unchanged};
  }

  public List<EnrolledPod> pods() {
    return enrolled.values().stream().map(Enrolment::pod).toList();
  }

  /**
   * Closes every pod's listeners and nothing else: the pods stay enrolled, with their namespace
   * handles open, so connections accepted before can still dial upstream from inside the pod while
   * they drain. A new proxy beside this one takes the new connections. Call {@link #close} after.
   */
  public void stopListening() {
    for (Enrolment e : enrolled.values()) {
      e.listeners().close();
    }
  }

  /**
   * Closes every listener (again: closing one twice is harmless) and namespace handle, but leaves
   * the redirect rules in place: while the proxy is down, pod traffic to the mesh fails instead of
   * silently bypassing it, and a restarted proxy re-adopts the pods (installing converges).
   */
  @Override
  public void close() {
    for (Enrolment e : enrolled.values()) {
      e.listeners().close();
      e.pod().netns().close();
    }
    enrolled.clear();
  }
}
