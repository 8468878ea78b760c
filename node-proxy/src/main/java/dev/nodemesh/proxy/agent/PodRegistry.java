package dev.nodemesh.proxy.agent;

import java.net.InetAddress;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicReference;
import org.jspecify.annotations.Nullable;

/**
 * The pods enrolled on this node, readable from any thread without locks: writers (the agent's
 * single thread) publish a new immutable view; event loops read the current one.
 */
public final class PodRegistry {
  private record View(Map<String, EnrolledPod> byUid, Map<InetAddress, EnrolledPod> byIp) {}

  private final AtomicReference<View> view = new AtomicReference<>(new View(Map.of(), Map.of()));
  private volatile Runnable onChange = () -> {};

  /**
   * Runs {@code listener} (on the agent's thread, so it must only hand work on) after each change
   * of the enrolled set; the control plane's enrolment report follows it.
   */
  public void onChange(Runnable listener) {
    onChange = listener;
  }

  /** The uids of the enrolled pods. */
  public Set<String> uids() {
    return view.get().byUid().keySet();
  }

  public @Nullable EnrolledPod byIp(InetAddress ip) {
    return view.get().byIp().get(ip);
  }

  public @Nullable EnrolledPod byUid(String uid) {
    return view.get().byUid().get(uid);
  }

  public List<EnrolledPod> all() {
    return List.copyOf(view.get().byUid().values());
  }

  public int size() {
    return view.get().byUid().size();
  }

  void put(EnrolledPod pod) {
    View v = view.get();
    Map<String, EnrolledPod> uids = new HashMap<>(v.byUid());
    uids.put(pod.uid(), pod);
    view.set(index(uids));
    onChange.run();
  }

  void remove(String uid) {
    View v = view.get();
    Map<String, EnrolledPod> uids = new HashMap<>(v.byUid());
    uids.remove(uid);
    view.set(index(uids));
    onChange.run();
  }

  private static View index(Map<String, EnrolledPod> uids) {
    Map<InetAddress, EnrolledPod> ips = new HashMap<>();
    for (EnrolledPod p : uids.values()) {
      for (InetAddress ip : p.ips()) {
        ips.put(ip, p);
      }
    }
    return new View(Map.copyOf(uids), Map.copyOf(ips));
  }
}
