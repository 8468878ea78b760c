package dev.nodemesh.proxy.agent;

import dev.nodemesh.bpf.conntrack.StaleConntrack;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.proxy.DataPlane;
import dev.nodemesh.proxy.intercept.Interception;
import dev.nodemesh.proxy.listener.PodListeners;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Enrols and removes pods: opens the pod's namespace, creates the in-pod listeners, then installs
 * the redirect rules (in that order, so no connection is ever redirected to a port nobody listens
 * on). Any failure undoes the steps already taken and is reported to the caller.
 *
 * <p>Not thread-safe: the agent calls it from one thread only.
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
    long opened = System.nanoTime();
    PodListeners listeners;
    try {
      listeners = PodListeners.open(plane, pod);
    } catch (IOException | RuntimeException e) {
      netns.close();
      throw new IOException("enrolling " + pod + ": " + e.getMessage(), e);
    }
    long listening = System.nanoTime();
    try {
      Channel inbound6 = listeners.inbound6();
      if (inbound6 == null) {
        interception.install(pod, listeners.inbound());
      } else {
        interception.install(pod, listeners.inbound(), inbound6);
      }
    } catch (IOException | RuntimeException e) {
      listeners.close();
      plane.release(pod);
      netns.close();
      throw new IOException("enrolling " + pod + ": " + e.getMessage(), e);
    }
    long captured = System.nanoTime();
    clearStaleConntrack(pod);
    long cleared = System.nanoTime();
    enrolled.put(spec.uid(), new Enrolment(pod, listeners));
    plane.pods().put(pod);
    long end = System.nanoTime();
    // The steps' times, because a pod start waits for all of them (issue 19's CNI ADD budget).
    log.info(
        "enrolled {} listening on {} in {} ms (netns {}, listeners {}, capture {}, conntrack {},"
            + " registry {})",
        pod,
        listeners.describe(),
        ms(end - start),
        ms(opened - start),
        ms(listening - opened),
        ms(captured - listening),
        ms(cleared - captured),
        ms(end - cleared));
    return existing == null ? Outcome.ADDED : Outcome.REPLACED;
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
