package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.maps.OrigDst;
import dev.nodemesh.bpf.maps.PeerKey;
import dev.nodemesh.bpf.maps.PodConfig;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * nodemesh's eBPF interception, loaded and attached: {@code nodemesh.o} from the jar (connect4,
 * sockops, getsockopt and their three maps) attached to one cgroup v2, with maps and links pinned
 * under a bpffs directory.
 *
 * <p>Pinning is what makes a proxy restart safe: {@link #install} finds maps already pinned and
 * reuses them (registered namespaces and live records survive), and finds links already pinned and
 * swaps the new program into them ({@code bpf_link__update_program}, atomic), so there is no moment
 * when pods bypass the mesh. {@link #close} leaves everything attached; {@link #uninstall} detaches
 * and unpins.
 *
 * <p>Limits: IPv4 only (no connect6 yet); a pinned map whose definition changed (size, key or
 * value) cannot be reused and fails the install, which then needs an {@link #uninstall} first; a
 * pinned link is adopted as is, whatever cgroup it is attached to. Not thread-safe for install and
 * uninstall; map reads and writes are safe from any thread.
 */
public final class InterceptionPrograms implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(InterceptionPrograms.class);
  private static final String OBJECT = "/bpf/nodemesh.o";
  private static final int LOG_SIZE = 1 << 20;

  /** Program name to the pin name of its link. Order: connect4 last, so records have a reader. */
  private static final Map<String, String> PROGRAMS = new LinkedHashMap<>();

  static {
    PROGRAMS.put("nm_sockops", "link_sockops");
    PROGRAMS.put("nm_getsockopt", "link_getsockopt");
    PROGRAMS.put("nm_connect4", "link_connect4");
  }

  public static final String POD_NETNS = "nm_pod_netns";
  public static final String ORIG_BY_COOKIE = "nm_orig_by_cookie";
  public static final String ORIG_BY_PEER = "nm_orig_by_peer";
  private static final List<String> MAPS = List.of(POD_NETNS, ORIG_BY_COOKIE, ORIG_BY_PEER);

  private final Path pinDir;
  private final Pointer object;
  private final Pointer buffer; // libbpf may read the ELF image until the object is closed
  private final List<Pointer> links;
  private final boolean adopted;
  private boolean closed;

  private InterceptionPrograms(
      Path pinDir, Pointer object, Pointer buffer, List<Pointer> links, boolean adopted) {
    this.pinDir = pinDir;
    this.object = object;
    this.buffer = buffer;
    this.links = links;
    this.adopted = adopted;
  }

  /**
   * Loads the programs and attaches them to {@code cgroup} (a cgroup v2 directory), pinning under
   * {@code pinDir} (a directory on a bpffs, created if missing) or adopting what is pinned there.
   */
  public static InterceptionPrograms install(Path cgroup, Path pinDir) throws IOException {
    Files.createDirectories(pinDir);
    byte[] elf;
    try (InputStream in = InterceptionPrograms.class.getResourceAsStream(OBJECT)) {
      if (in == null) {
        throw new IOException(OBJECT + " is not on the classpath: was bpf built with clang?");
      }
      elf = in.readAllBytes();
    }
    Pointer buffer = Bpf.copyOf(elf);
    Pointer obj = Bpf.openMem(buffer, elf.length, "nodemesh.o");
    List<Pointer> links = new ArrayList<>();
    // Pins this call creates: removed again if the install fails, so a failed first install (e.g.
    // an attach refused after a clean probe, before a fallback to iptables) leaves nothing behind.
    // Pins that were there before (a restart adopting them) are never removed here.
    List<Path> created = new ArrayList<>();
    for (String map : MAPS) {
      if (!Files.exists(pinDir.resolve(map))) {
        created.add(pinDir.resolve(map));
      }
    }
    boolean adopted = false;
    try {
      for (String map : MAPS) {
        Bpf.check(
            Bpf.lib().bpf_map__set_pin_path(Bpf.findMap(obj, map), pinDir.resolve(map).toString()),
            "bpf_map__set_pin_path",
            map);
      }
      checkMirrors(obj);
      Map<String, Pointer> logs = new LinkedHashMap<>();
      for (String prog : PROGRAMS.keySet()) {
        Pointer logBuf = Bpf.allocate(LOG_SIZE);
        Bpf.check(
            Bpf.lib().bpf_program__set_log_buf(Bpf.findProgram(obj, prog), logBuf, LOG_SIZE),
            "bpf_program__set_log_buf",
            prog);
        logs.put(prog, logBuf);
      }
      int rc = Bpf.lib().bpf_object__load(obj);
      if (rc < 0) {
        throw new BpfException("bpf_object__load", "nodemesh.o", -rc, verifierLogs(logs));
      }
      int cgroupFd = Native.open(cgroup.toString(), Native.O_RDONLY | Native.O_DIRECTORY);
      try {
        for (Map.Entry<String, String> p : PROGRAMS.entrySet()) {
          Pointer prog = Bpf.findProgram(obj, p.getKey());
          Path linkPin = pinDir.resolve(p.getValue());
          if (Files.exists(linkPin)) {
            Pointer link = Bpf.openLink(linkPin.toString());
            links.add(link);
            Bpf.check(
                Bpf.lib().bpf_link__update_program(link, prog),
                "bpf_link__update_program",
                p.getKey() + " into " + linkPin);
            adopted = true;
          } else {
            Pointer link = Bpf.attachCgroup(prog, cgroupFd, p.getKey() + " to " + cgroup);
            links.add(link);
            created.add(linkPin);
            Bpf.check(
                Bpf.lib().bpf_link__pin(link, linkPin.toString()),
                "bpf_link__pin",
                linkPin.toString());
          }
        }
      } finally {
        Native.close(cgroupFd);
      }
    } catch (IOException | RuntimeException e) {
      // Unpin first: a link made by this call then detaches when its fd is closed below; links
      // adopted from pins stay attached (they were working before this call).
      for (Path pin : created) {
        try {
          Files.deleteIfExists(pin);
        } catch (IOException cleanup) {
          e.addSuppressed(cleanup);
        }
      }
      for (Pointer l : links) {
        Bpf.lib().bpf_link__destroy(l);
      }
      Bpf.lib().bpf_object__close(obj);
      throw e;
    }
    log.info(
        "eBPF interception {} on {} (pins in {})",
        adopted ? "adopted" : "attached",
        cgroup,
        pinDir);
    return new InterceptionPrograms(pinDir, obj, buffer, links, adopted);
  }

  /** The map sizes the object declares must match the Java mirrors, or nothing is loaded. */
  private static void checkMirrors(Pointer obj) throws BpfException {
    expect(obj, POD_NETNS, 8, PodConfig.SIZE);
    expect(obj, ORIG_BY_COOKIE, 8, OrigDst.SIZE);
    expect(obj, ORIG_BY_PEER, PeerKey.SIZE, OrigDst.SIZE);
  }

  private static void expect(Pointer obj, String map, int key, int value) throws BpfException {
    Pointer m = Bpf.findMap(obj, map);
    int k = Bpf.lib().bpf_map__key_size(m);
    int v = Bpf.lib().bpf_map__value_size(m);
    if (k != key || v != value) {
      throw new IllegalStateException(
          map
              + " is "
              + k
              + "/"
              + v
              + " bytes in nodemesh.o, the Java mirror "
              + key
              + "/"
              + value);
    }
  }

  private static String verifierLogs(Map<String, Pointer> logs) {
    StringBuilder s = new StringBuilder();
    for (Map.Entry<String, Pointer> e : logs.entrySet()) {
      String text = e.getValue().getString(0, LOG_SIZE, StandardCharsets.UTF_8).strip();
      if (!text.isEmpty()) {
        s.append("verifier log of ").append(e.getKey()).append(":\n").append(text).append('\n');
      }
    }
    return s.toString();
  }

  /** True when {@link #install} found pinned links and took them over instead of attaching. */
  public boolean adopted() {
    return adopted;
  }

  public Path pinDir() {
    return pinDir;
  }

  private int mapFd(String map) throws BpfException {
    return Bpf.check(Bpf.lib().bpf_map__fd(Bpf.findMap(object, map)), "bpf_map__fd", map);
  }

  /** Starts redirecting the namespace with this cookie (see NetworkNamespace#cookie). */
  public void register(long netnsCookie, PodConfig config) throws BpfException {
    Bpf.update(mapFd(POD_NETNS), PodConfig.key(netnsCookie), config.encode(), POD_NETNS);
  }

  /** Stops redirecting new connects from that namespace; returns false if it was not registered. */
  public boolean unregister(long netnsCookie) throws BpfException {
    return Bpf.delete(mapFd(POD_NETNS), PodConfig.key(netnsCookie), POD_NETNS);
  }

  public Optional<PodConfig> registration(long netnsCookie) throws BpfException {
    byte[] v = Bpf.lookup(mapFd(POD_NETNS), PodConfig.key(netnsCookie), PodConfig.SIZE, POD_NETNS);
    return v == null ? Optional.empty() : Optional.of(PodConfig.decode(v));
  }

  /**
   * The original destination of a redirected connection, looked up by the accepted socket's peer
   * and its namespace's cookie: the map path, for a proxy whose accepted sockets are outside the
   * cgroup the getsockopt program is attached to.
   */
  public Optional<InetSocketAddress> originalDestination(long netnsCookie, InetSocketAddress peer)
      throws BpfException {
    byte[] v =
        Bpf.lookup(
            mapFd(ORIG_BY_PEER),
            new PeerKey(netnsCookie, peer).encode(),
            OrigDst.SIZE,
            ORIG_BY_PEER);
    return v == null ? Optional.empty() : Optional.of(OrigDst.decode(v).destination());
  }

  /** How many entries a map holds now (walks the keys: for tests and diagnostics). */
  public int entries(String map) throws BpfException {
    int keySize = Bpf.lib().bpf_map__key_size(Bpf.findMap(object, map));
    return Bpf.count(mapFd(map), keySize, map);
  }

  /** Lets go of this process's handles; programs, links and maps stay pinned and attached. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (Pointer l : links) {
      Bpf.lib().bpf_link__disconnect(l);
      Bpf.lib().bpf_link__destroy(l);
    }
    Bpf.lib().bpf_object__close(object);
    log.debug(
        "eBPF interception handles closed, still attached via {} ({} bytes image)",
        pinDir,
        buffer.size());
  }

  /** Detaches every program and removes the pins: pods are no longer intercepted. */
  public void uninstall() throws IOException {
    if (closed) {
      throw new IllegalStateException("closed; install() again to adopt and then uninstall");
    }
    List<IOException> failures = new ArrayList<>();
    for (Pointer l : links) {
      try {
        Bpf.check(Bpf.lib().bpf_link__detach(l), "bpf_link__detach", pinDir.toString());
      } catch (BpfException e) {
        failures.add(e);
      }
    }
    for (String link : PROGRAMS.values()) {
      Files.deleteIfExists(pinDir.resolve(link));
    }
    for (String map : MAPS) {
      Files.deleteIfExists(pinDir.resolve(map));
    }
    close();
    try {
      Files.deleteIfExists(pinDir);
    } catch (IOException e) {
      failures.add(e);
    }
    if (!failures.isEmpty()) {
      IOException first = failures.get(0);
      failures.stream().skip(1).forEach(first::addSuppressed);
      throw first;
    }
    log.info("eBPF interception detached and unpinned ({})", pinDir);
  }
}
