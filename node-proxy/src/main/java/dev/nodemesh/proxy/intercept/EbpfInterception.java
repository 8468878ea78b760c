package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.iptables.CallerAddressRouting;
import dev.nodemesh.bpf.iptables.Prior;
import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.maps.InboundConfig;
import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.socket.SocketOptions;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.transport.Transport;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.Inet4Address;
import java.net.Inet6Address;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.stream.Stream;
import org.jspecify.annotations.Nullable;

/**
 * eBPF interception. Outbound: the cgroup programs are attached once to the pods' cgroup and
 * enrolling a pod registers its netns cookie; the original destination comes from the programs' map
 * (the accepted socket's peer in the pod's namespace), falling back to {@code SO_ORIGINAL_DST},
 * which the getsockopt program answers when the proxy's listeners are in the attached cgroup.
 * Inbound: enrolling a pod attaches the sk_lookup program to its namespace and hands it the pod's
 * 15006 listener, so TCP connections arriving at the pod's IPv4 addresses (from other pods over the
 * bridge or from other nodes; not 15008, not over loopback) are accepted there with the original
 * destination as the accepted socket's local address.
 *
 * <p>A pod with an IPv6 address is registered with NM_POD_IPV6 (connect6 then sends its native IPv6
 * connects to [::1]:15001) and its IPv6 addresses go to the [::]:15006 listener. A pod without one
 * keeps IPv4 capture only: native IPv6 connects are left alone, IPv4-mapped ones are captured.
 *
 * <p>Delivery from the caller's address needs the same {@link CallerAddressRouting} as iptables
 * mode (a mangle CONNMARK pair and a local route inside the pod): no program here sees the app's
 * replies before routing, so those few rules are shared by both modes. Its rule for the proxy's own
 * delivery socket is what keeps sk_lookup from capturing that socket's connection again: the
 * connection comes from the caller's address, so only its arrival on {@code lo} tells it apart, and
 * IPv6 reports {@code lo} only for a packet routed over it (IPv4 and IPv6, pods with IPv6 addresses
 * get the routing of both families).
 */
public final class EbpfInterception implements Interception {
  private final InterceptionPrograms programs;
  private final PodConfig config;
  private final InboundConfig inbound;
  private final CallerAddressRouting routing;
  private final Map<String, Registered> registered = new ConcurrentHashMap<>();

  /**
   * What was registered for one pod namespace, to undo it on remove; {@code ipv6}: the routing was
   * installed for IPv6 too.
   */
  private record Registered(long cookie, List<InetAddress> inboundAddresses, boolean ipv6) {}

  private EbpfInterception(
      InterceptionPrograms programs,
      PodConfig config,
      InboundConfig inbound,
      CallerAddressRouting routing) {
    this.programs = programs;
    this.config = config;
    this.inbound = inbound;
    this.routing = routing;
  }

  /**
   * Loads and attaches (or adopts) the programs on {@code mode}'s cgroup and pin dir. The caller
   * probes first ({@link InterceptionSelector}); a failure here is the attach itself.
   */
  public static EbpfInterception start(InterceptionMode mode, int outboundPort, int proxyMark)
      throws IOException {
    return new EbpfInterception(
        InterceptionPrograms.install(mode.cgroup(), mode.pinDir(), mode.skMsg()),
        new PodConfig(outboundPort, proxyMark),
        InboundConfig.defaults(),
        CallerAddressRouting.forProxyMark(proxyMark));
  }

  /**
   * The proxy's uninstall in eBPF mode: adopts what an earlier proxy pinned under {@code mode}'s
   * pin dir (the cgroup links, the maps, each pod's inbound sk_lookup link, the sk_msg shortcut)
   * and detaches and unpins all of it, then removes the pin dir. A stopped proxy leaves them on
   * purpose (pods stay captured, so traffic fails instead of bypassing the mesh until a new proxy
   * adopts them); this is for tear-down. Run it only while no proxy uses that pin dir. Returns what
   * it did.
   */
  public static String uninstall(InterceptionMode mode) throws IOException {
    if (mode.kind() == InterceptionMode.Kind.IPTABLES) {
      return "iptables interception pins nothing (each pod's rules go with its CNI DEL)";
    }
    if (!Files.isDirectory(mode.pinDir())) {
      return "nothing pinned: " + mode.pinDir() + " does not exist";
    }
    // install() adopts every pin there (attaching anything missing, which uninstall detaches
    // again), so uninstall sees links and maps exactly as the last proxy left them.
    InterceptionPrograms.install(mode.cgroup(), mode.pinDir(), false).uninstall();
    return "detached and unpinned everything under " + mode.pinDir();
  }

  /** The loaded programs and their maps (for diagnostics and tests: registrations, map sizes). */
  public InterceptionPrograms programs() {
    return programs;
  }

  /** Outbound only: without the inbound listener there is nothing to hand connections to. */
  @Override
  public void install(EnrolledPod pod) throws IOException {
    long cookie = pod.netns().cookie();
    boolean captured = programs.registration(cookie).isPresent();
    programs.register(cookie, config);
    try {
      routing.install(Path.of(pod.netnsPath()), pod.hasIpv6());
    } catch (IOException | RuntimeException e) {
      if (!captured) {
        programs.unregister(cookie);
      }
      throw e;
    }
    registered.put(pod.netnsPath(), new Registered(cookie, List.of(), pod.hasIpv6()));
  }

  @Override
  public void install(EnrolledPod pod, Channel inboundListener) throws IOException {
    installAll(pod, inboundListener, null, Prior.NONE);
  }

  /**
   * With {@code inboundListener6} (the pod has an IPv6 address and the proxy listens on [::1]:15001
   * and [::]:15006 there) the pod is registered with NM_POD_IPV6, so connect6 redirects its native
   * IPv6 connects too, and its IPv6 addresses are captured inbound into that listener.
   */
  @Override
  public void install(EnrolledPod pod, Channel inboundListener, Channel inboundListener6)
      throws IOException {
    installAll(pod, inboundListener, inboundListener6, Prior.NONE);
  }

  /** {@code prior} is about the caller-address routing's mangle chains in the namespace. */
  @Override
  public void install(
      EnrolledPod pod, Channel inboundListener, @Nullable Channel inboundListener6, Prior prior)
      throws IOException {
    installAll(pod, inboundListener, inboundListener6, prior);
  }

  private void installAll(
      EnrolledPod pod, Channel inbound4, @Nullable Channel inbound6, Prior prior)
      throws IOException {
    long cookie = pod.netns().cookie();
    List<InetAddress> v4 = addresses(pod, false);
    List<InetAddress> v6 = inbound6 == null ? List.of() : addresses(pod, true);
    List<InetAddress> all = Stream.concat(v4.stream(), v6.stream()).toList();
    // Already captured: another process enrolled it (the old one, in an upgrade; the maps and
    // links are shared). A failure here must not undo what that process still serves by.
    boolean captured = programs.registration(cookie).isPresent();
    programs.register(cookie, inbound6 == null ? config : config.withFlags(PodConfig.IPV6));
    try {
      if (!v4.isEmpty()) {
        programs.registerInbound(
            Path.of(pod.netnsPath()), cookie, v4, Transport.fd(inbound4), inbound);
      }
      if (inbound6 != null && !v6.isEmpty()) {
        programs.registerInbound(
            Path.of(pod.netnsPath()), cookie, v6, Transport.fd(inbound6), inbound);
      }
      // Both families where the pod has IPv6: the proxy delivers to its app from an IPv6 caller's
      // address too (DirectDialer), whether or not this process listens on IPv6 there.
      routing.install(Path.of(pod.netnsPath()), pod.hasIpv6(), prior);
    } catch (IOException | RuntimeException e) {
      if (captured) {
        // Left registered and attached: the pod's outbound stays captured by the process that
        // enrolled it; inbound fails closed once this process's listener (now in the pod's
        // SOCKHASH entries) closes, since sk_lookup drops what finds no listener.
        throw e;
      }
      programs.unregister(cookie);
      try {
        programs.unregisterInbound(cookie, all);
      } catch (IOException undo) {
        e.addSuppressed(undo);
      }
      throw e;
    }
    registered.put(pod.netnsPath(), new Registered(cookie, all, pod.hasIpv6()));
  }

  /** The pod's IPv4 or (global/ULA, not link-local) IPv6 addresses. */
  private static List<InetAddress> addresses(EnrolledPod pod, boolean v6) {
    return pod.ips().stream()
        .filter(
            a ->
                v6
                    ? a instanceof Inet6Address && !a.isLinkLocalAddress()
                    : a instanceof Inet4Address)
        .toList();
  }

  /**
   * Unregisters the netns cookie and detaches and unpins its inbound link, from what {@link
   * #install} recorded: nothing of that enters the namespace, so this works after its path is gone
   * (the caller-address routing lives in the namespace and goes with it; while the path exists it
   * is removed here). A namespace this proxy did not enrol (it restarted) is found by opening the
   * path, which needs the path to exist; if it is gone, its pinned inbound link is unpinned at the
   * next start (adoption fails for a dead namespace), its registration stays (a cookie is never
   * reused).
   */
  @Override
  public void remove(Path netns) throws IOException {
    Registered r = registered.remove(netns.toString());
    boolean known = r != null;
    if (r == null) {
      if (!Files.exists(netns)) {
        return;
      }
      try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
        r = new Registered(ns.cookie(), List.of(), false);
      }
    }
    programs.unregister(r.cookie());
    try {
      programs.unregisterInbound(r.cookie(), r.inboundAddresses());
    } finally {
      if (Files.exists(netns)) {
        if (known) {
          // Exactly what install put there: one transaction per family.
          routing.removeInstalled(netns, r.ipv6());
        } else {
          routing.remove(netns);
        }
      }
    }
  }

  /**
   * The record connect4 left for the connection's client end, looked up under the pod's netns
   * cookie: the one this process registered, else that of the accepted socket itself (one
   * getsockopt), never only for pods this process has registered: in an upgrade the new process's
   * listener (SO_REUSEPORT beside the old one's) takes connections from the moment it is bound,
   * before its {@link #install} has run for the pod, while the maps it shares with the old process
   * already hold the pod's registration and the records. The fallback, {@code SO_ORIGINAL_DST}, is
   * only right where a getsockopt program answers it; elsewhere conntrack (which the caller-address
   * rules turn on in the pod) answers a connection nothing rewrote with the listener itself, which
   * {@code Relays.originalDestination} refuses.
   */
  @Override
  public InetSocketAddress originalDestination(Channel accepted, EnrolledPod source)
      throws IOException {
    if (accepted.remoteAddress() instanceof InetSocketAddress peer) {
      Registered r = registered.get(source.netnsPath());
      long cookie = r != null ? r.cookie() : SocketOptions.netnsCookie(Transport.fd(accepted));
      Optional<InetSocketAddress> found = programs.originalDestination(cookie, peer);
      if (found.isPresent()) {
        return found.get();
      }
    }
    return Interception.originalDestination(accepted);
  }

  /**
   * sk_lookup handed the connection to the listener without rewriting it: the accepted socket's
   * local address is where the client sent it.
   */
  @Override
  public InetSocketAddress inboundDestination(Channel accepted, EnrolledPod pod)
      throws IOException {
    if (accepted.localAddress() instanceof InetSocketAddress local) {
      return local;
    }
    throw new IOException("accepted inbound connection has no local address: " + accepted);
  }

  @Override
  public void close() {
    programs.close();
  }

  @Override
  public String toString() {
    return "ebpf (pins " + programs.pinDir() + ")";
  }
}
