package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.maps.InboundConfig;
import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.maps.SockKey;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * nodemesh's eBPF interception, loaded and attached: {@code nodemesh.o} from the jar (connect4,
 * connect6, sockops, getsockopt attached to one cgroup v2 for outbound; the sk_lookup program
 * attached to each registered pod's network namespace for inbound), with maps and links pinned
 * under a bpffs directory.
 *
 * <p>Pinning is what makes a proxy restart safe: {@link #install} finds maps already pinned and
 * reuses them (registered namespaces and live records survive), and finds links already pinned and
 * swaps the new program into them ({@code bpf_link__update_program}, atomic), so there is no moment
 * when pods bypass the mesh. {@link #close} leaves everything attached; {@link #uninstall} detaches
 * and unpins.
 *
 * <p>Limits: outbound covers IPv4, IPv4-mapped destinations on IPv6 sockets, and native IPv6
 * destinations only for pods registered with {@link PodConfig#IPV6} (the proxy listens on [::1]);
 * inbound captures addresses whose family matches the listener given (the proxy's is IPv4); a
 * pinned map whose definition changed (size, key or value) cannot be reused and fails the install,
 * which then needs an {@link #uninstall} first; a pinned link is adopted as is, whatever cgroup it
 * is attached to. Not thread-safe for install and uninstall; map reads and writes are safe from any
 * thread, and exclude {@link #close} (a use after close throws {@link IllegalStateException}).
 *
 * <p>This class puts together the units that do the work: {@link ProgramLoader} (loading, pins and
 * adoption of the cgroup programs), {@link OutboundMaps} (pod registration, original destinations),
 * {@link InboundAttachments} (sk_lookup per pod namespace), {@link SkMsgShortcut}, all sharing one
 * {@link ObjectHandles}.
 */
public final class InterceptionPrograms implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(InterceptionPrograms.class);

  public static final String POD_NETNS = "nm_pod_netns";
  public static final String ORIG_BY_COOKIE = "nm_orig_by_cookie";
  public static final String ORIG_BY_PEER = "nm_orig_by_peer";
  public static final String ORIG6_BY_COOKIE = "nm_orig6_by_cookie";
  public static final String ORIG6_BY_PEER = "nm_orig6_by_peer";
  public static final String INBOUND_PODS = "nm_inbound_pods";
  public static final String INBOUND_LISTENER = "nm_inbound_listener";
  public static final String SKMSG_SOCKS = "nm_skmsg_socks";
  public static final String SKMSG_TCP = "nm_skmsg_tcp";

  private final Path pinDir;
  private final List<Pointer> links;
  private final boolean adopted;
  private final ObjectHandles handles;
  private final OutboundMaps outbound;
  private final InboundAttachments inbound;
  private final SkMsgShortcut shortcut;

  private InterceptionPrograms(Path pinDir, ProgramLoader.Loaded loaded) {
    this.pinDir = pinDir;
    this.links = loaded.links();
    this.adopted = loaded.adopted();
    this.handles = new ObjectHandles(pinDir, loaded.object(), loaded.buffer());
    this.outbound = new OutboundMaps(handles);
    this.inbound = new InboundAttachments(pinDir, handles);
    this.shortcut = new SkMsgShortcut(handles);
  }

  /**
   * Loads the programs and attaches them to {@code cgroup} (a cgroup v2 directory), pinning under
   * {@code pinDir} (a directory on a bpffs, created if missing) or adopting what is pinned there.
   */
  public static InterceptionPrograms install(Path cgroup, Path pinDir) throws IOException {
    return install(cgroup, pinDir, false);
  }

  /**
   * As {@link #install(Path, Path)}; with {@code skMsg} also the sk_msg shortcut between pod
   * sockets and the proxy's in-pod outbound listener (attached, or adopted when pinned). Without
   * it, a shortcut left pinned by an earlier run is detached and unpinned.
   */
  public static InterceptionPrograms install(Path cgroup, Path pinDir, boolean skMsg)
      throws IOException {
    ProgramLoader.Loaded loaded = ProgramLoader.load(cgroup, pinDir, skMsg);
    log.info(
        "eBPF interception {} on {} (pins in {}{})",
        loaded.adopted() ? "adopted" : "attached",
        cgroup,
        pinDir,
        skMsg ? ", sk_msg shortcut on" : "");
    return new InterceptionPrograms(pinDir, loaded);
  }

  /** True when {@link #install} found pinned links and took them over instead of attaching. */
  public boolean adopted() {
    return adopted;
  }

  public Path pinDir() {
    return pinDir;
  }

  /** Starts redirecting the namespace with this cookie (see NetworkNamespace#cookie). */
  public void register(long netnsCookie, PodConfig config) throws BpfException {
    outbound.register(netnsCookie, config);
  }

  /** Stops redirecting new connects from that namespace; returns false if it was not registered. */
  public boolean unregister(long netnsCookie) throws BpfException {
    return outbound.unregister(netnsCookie);
  }

  public Optional<PodConfig> registration(long netnsCookie) throws BpfException {
    return outbound.registration(netnsCookie);
  }

  /**
   * Starts inbound capture for a pod: TCP connections arriving at any of {@code addresses} (from
   * outside the pod, on a port not excluded by {@code config}) are handed to {@code listenerFd},
   * the proxy's inbound listening socket inside that pod (bound to 0.0.0.0:15006). Attaches the
   * sk_lookup program to the namespace at {@code netns} and pins the link, or swaps the program
   * into the link already pinned for it. Re-registering replaces the listener and config. All or
   * nothing: a failure removes what this call added.
   */
  public void registerInbound(
      Path netns,
      long netnsCookie,
      Collection<InetAddress> addresses,
      int listenerFd,
      InboundConfig config)
      throws IOException {
    inbound.register(netns, netnsCookie, addresses, listenerFd, config);
  }

  /**
   * Stops inbound capture for a pod: detaches and unpins its sk_lookup link (found by netns cookie)
   * and forgets its addresses. Returns false if no link was pinned for it.
   */
  public boolean unregisterInbound(long netnsCookie, Collection<InetAddress> addresses)
      throws IOException {
    return inbound.unregister(netnsCookie, addresses);
  }

  /** True while an inbound link is pinned for the namespace with this cookie. */
  public boolean inboundAttached(long netnsCookie) {
    return inbound.attached(netnsCookie);
  }

  /** The inbound config registered for a pod address, if any. */
  public Optional<InboundConfig> inboundRegistration(InetAddress address) throws BpfException {
    return inbound.registration(address);
  }

  /** Whether a listening socket is in place for a pod address (gone when the proxy closed it). */
  public boolean inboundListenerPresent(InetAddress address) throws BpfException {
    return inbound.listenerPresent(address);
  }

  /**
   * The original destination of a redirected connection, looked up by the accepted socket's peer
   * and its namespace's cookie: the map path, for a proxy whose accepted sockets are outside the
   * cgroup the getsockopt program is attached to.
   */
  public Optional<InetSocketAddress> originalDestination(long netnsCookie, InetSocketAddress peer)
      throws BpfException {
    return outbound.originalDestination(netnsCookie, peer);
  }

  /**
   * Whether this end of a pod-to-proxy connection is in the sk_msg shortcut's map (key: the
   * socket's own view, see {@link SockKey}).
   */
  public boolean shortcutHolds(SockKey key) throws BpfException {
    return shortcut.holds(key);
  }

  /** How many entries a map holds now (walks the keys: for tests and diagnostics). */
  public int entries(String map) throws BpfException {
    return handles.whileOpen(() -> Bpf.count(handles.mapFd(map), handles.keySize(map), map));
  }

  /** Lets go of this process's handles; programs, links and maps stay pinned and attached. */
  @Override
  public void close() {
    if (!handles.markClosed()) {
      return;
    }
    // Not bpf_link__disconnect first: for an fd-based link libbpf's "detach" is close(fd), so a
    // disconnected link's fd was never closed (one leaked fd per link and close). Closing the fd
    // leaves the link attached: its pin holds it (every link here is pinned, or install failed).
    for (Pointer l : links) {
      Bpf.lib().bpf_link__destroy(l);
    }
    handles.freeObject();
    log.debug(
        "eBPF interception handles closed, still attached via {} ({} bytes image)",
        pinDir,
        handles.imageSize());
  }

  /** Detaches every program and removes the pins: pods are no longer intercepted. */
  public void uninstall() throws IOException {
    if (handles.closed()) {
      throw new IllegalStateException("closed; install() again to adopt and then uninstall");
    }
    // Every step is tried whatever failed before it, and the handles are closed in any case.
    List<IOException> failures = new ArrayList<>();
    try {
      for (Pointer l : links) {
        try {
          Bpf.check(Bpf.lib().bpf_link__detach(l), "bpf_link__detach", pinDir.toString());
        } catch (BpfException e) {
          failures.add(e);
        }
      }
      for (String link : ProgramLoader.PROGRAMS.values()) {
        Pins.deletePin(pinDir.resolve(link), failures);
      }
      try {
        // this run's link is detached above; the sk_msg program and pins here
        SkMsgShortcut.detach(pinDir);
      } catch (IOException e) {
        failures.add(e);
      }
      InboundAttachments.detachAll(pinDir, failures);
      for (String map : ProgramLoader.MAPS) {
        Pins.deletePin(pinDir.resolve(map), failures);
      }
    } finally {
      close();
    }
    Pins.deletePin(pinDir, failures);
    if (!failures.isEmpty()) {
      IOException first = failures.get(0);
      failures.stream().skip(1).forEach(first::addSuppressed);
      throw first;
    }
    log.info("eBPF interception detached and unpinned ({})", pinDir);
  }
}
