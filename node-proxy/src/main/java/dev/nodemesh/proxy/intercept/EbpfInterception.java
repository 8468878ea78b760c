package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.socket.SocketOptions;
import dev.nodemesh.proxy.agent.EnrolledPod;
import dev.nodemesh.proxy.transport.Transport;
import io.netty.channel.Channel;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * eBPF interception: the programs are attached once to the pods' cgroup; enrolling a pod registers
 * its netns cookie. The original destination comes from the programs' map (the accepted socket's
 * peer in the pod's namespace), falling back to {@code SO_ORIGINAL_DST}, which the getsockopt
 * program answers when the proxy's listeners are in the attached cgroup.
 *
 * <p>Limits: outbound only; inbound plaintext capture (15006) is not done in this mode yet.
 */
public final class EbpfInterception implements Interception {
  private final InterceptionPrograms programs;
  private final PodConfig config;
  private final Map<String, Long> cookies = new ConcurrentHashMap<>();

  private EbpfInterception(InterceptionPrograms programs, PodConfig config) {
    this.programs = programs;
    this.config = config;
  }

  /**
   * Loads and attaches (or adopts) the programs on {@code mode}'s cgroup and pin dir. The caller
   * probes first ({@link InterceptionSelector}); a failure here is the attach itself.
   */
  public static EbpfInterception start(InterceptionMode mode, int outboundPort, int proxyMark)
      throws IOException {
    return new EbpfInterception(
        InterceptionPrograms.install(mode.cgroup(), mode.pinDir()),
        new PodConfig(outboundPort, proxyMark));
  }

  /** The loaded programs and their maps (for diagnostics and tests: registrations, map sizes). */
  public InterceptionPrograms programs() {
    return programs;
  }

  @Override
  public void install(EnrolledPod pod) throws IOException {
    long cookie = pod.netns().cookie();
    programs.register(cookie, config);
    cookies.put(pod.netnsPath(), cookie);
  }

  @Override
  public void remove(Path netns) throws IOException {
    Long cookie = cookies.remove(netns.toString());
    if (cookie == null) {
      if (!Files.exists(netns)) {
        return;
      }
      try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
        cookie = ns.cookie();
      }
    }
    programs.unregister(cookie);
  }

  @Override
  public InetSocketAddress originalDestination(Channel accepted, EnrolledPod source)
      throws IOException {
    Long cookie = cookies.get(source.netnsPath());
    if (cookie != null && accepted.remoteAddress() instanceof InetSocketAddress peer) {
      Optional<InetSocketAddress> found = programs.originalDestination(cookie, peer);
      if (found.isPresent()) {
        return found.get();
      }
    }
    return SocketOptions.originalDestination(Transport.fd(accepted));
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
