package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.maps.InboundConfig;
import dev.nodemesh.bpf.maps.InboundKey;
import dev.nodemesh.bpf.maps.OrigDst;
import dev.nodemesh.bpf.maps.OrigDst6;
import dev.nodemesh.bpf.maps.PeerKey;
import dev.nodemesh.bpf.maps.PeerKey6;
import dev.nodemesh.bpf.maps.PodConfig;
import dev.nodemesh.bpf.maps.SockKey;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
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
 * thread.
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
    PROGRAMS.put("nm_connect6", "link_connect6");
    PROGRAMS.put("nm_connect4", "link_connect4");
  }

  public static final String POD_NETNS = "nm_pod_netns";
  public static final String ORIG_BY_COOKIE = "nm_orig_by_cookie";
  public static final String ORIG_BY_PEER = "nm_orig_by_peer";
  public static final String ORIG6_BY_COOKIE = "nm_orig6_by_cookie";
  public static final String ORIG6_BY_PEER = "nm_orig6_by_peer";
  public static final String INBOUND_PODS = "nm_inbound_pods";
  public static final String INBOUND_LISTENER = "nm_inbound_listener";
  public static final String SKMSG_SOCKS = "nm_skmsg_socks";
  public static final String SKMSG_TCP = "nm_skmsg_tcp";
  private static final List<String> MAPS =
      List.of(
          POD_NETNS,
          ORIG_BY_COOKIE,
          ORIG_BY_PEER,
          ORIG6_BY_COOKIE,
          ORIG6_BY_PEER,
          INBOUND_PODS,
          INBOUND_LISTENER,
          SKMSG_SOCKS,
          SKMSG_TCP);

  /**
   * The optional sk_msg shortcut: a second sockops program (cgroup link, pinned like the others)
   * that puts both ends of pod-to-proxy connections into {@link #SKMSG_SOCKS}, and the sk_msg
   * program attached to that map (not a link: pinned as a program so that a later run can detach
   * it).
   */
  private static final String SKMSG_SOCKOPS = "nm_skmsg_sockops";

  private static final String SKMSG_SOCKOPS_LINK = "link_skmsg_sockops";
  private static final String SKMSG = "nm_skmsg";
  private static final String SKMSG_PROG = "prog_skmsg";

  /** The sk_lookup program, attached per pod namespace rather than to the cgroup. */
  private static final String INBOUND = "nm_inbound";

  /** Pin name prefix of a pod's inbound link; the rest is its netns cookie in hex. */
  private static final String INBOUND_LINK = "link_inbound_";

  private final Path pinDir;
  private final Pointer object;
  private final Pointer buffer; // libbpf may read the ELF image until the object is closed
  private final List<Pointer> links;
  private final boolean adopted;
  // Guards the libbpf object and the map fds against close() while another thread (an event loop
  // looking up an original destination) still uses them: a freed object or a reused fd number.
  private final ReadWriteLock handles = new ReentrantReadWriteLock();
  private boolean closed; // guarded by handles
  // Map name -> fd, resolved once: a lookup per captured connection (original destination) would
  // otherwise marshal the name and search the object's maps each time. Valid until close().
  private final Map<String, Integer> mapFds = new java.util.concurrent.ConcurrentHashMap<>();

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
    return install(cgroup, pinDir, false);
  }

  /**
   * As {@link #install(Path, Path)}; with {@code skMsg} also the sk_msg shortcut between pod
   * sockets and the proxy's in-pod outbound listener (attached, or adopted when pinned). Without
   * it, a shortcut left pinned by an earlier run is detached and unpinned.
   */
  public static InterceptionPrograms install(Path cgroup, Path pinDir, boolean skMsg)
      throws IOException {
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
      List<String> all = new ArrayList<>(PROGRAMS.keySet());
      all.add(INBOUND);
      all.add(SKMSG_SOCKOPS);
      all.add(SKMSG);
      for (String prog : all) {
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
      if (skMsg) {
        // the sk_msg program first: a socket takes the map's programs when it is added
        attachSkMsg(obj, pinDir, created);
      } else {
        detachSkMsg(pinDir);
      }
      Map<String, String> cgroupPrograms = new LinkedHashMap<>(PROGRAMS);
      if (skMsg) {
        cgroupPrograms.put(SKMSG_SOCKOPS, SKMSG_SOCKOPS_LINK);
      }
      int cgroupFd = Native.open(cgroup.toString(), Native.O_RDONLY | Native.O_DIRECTORY);
      try {
        for (Map.Entry<String, String> p : cgroupPrograms.entrySet()) {
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
      adopted |= adoptInboundLinks(obj, pinDir);
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
        "eBPF interception {} on {} (pins in {}{})",
        adopted ? "adopted" : "attached",
        cgroup,
        pinDir,
        skMsg ? ", sk_msg shortcut on" : "");
    return new InterceptionPrograms(pinDir, obj, buffer, links, adopted);
  }

  /**
   * Attaches nm_skmsg to nm_skmsg_socks (replacing a program an earlier run attached) and pins it,
   * so that a later run without the shortcut, or uninstall, can name it to detach it.
   */
  private static void attachSkMsg(Pointer obj, Path pinDir, List<Path> created) throws IOException {
    int progFd =
        Bpf.check(Bpf.lib().bpf_program__fd(Bpf.findProgram(obj, SKMSG)), "bpf_program__fd", SKMSG);
    int mapFd =
        Bpf.check(Bpf.lib().bpf_map__fd(Bpf.findMap(obj, SKMSG_SOCKS)), "bpf_map__fd", SKMSG_SOCKS);
    Bpf.check(
        Bpf.lib().bpf_prog_attach(progFd, mapFd, Bpf.BPF_SK_MSG_VERDICT, 0),
        "bpf_prog_attach",
        SKMSG + " to " + SKMSG_SOCKS);
    Path pin = pinDir.resolve(SKMSG_PROG);
    if (!Files.exists(pin)) {
      created.add(pin);
    }
    Files.deleteIfExists(pin); // the program this run replaced, if any
    Bpf.check(Bpf.lib().bpf_obj_pin(progFd, pin.toString()), "bpf_obj_pin", pin.toString());
  }

  /** Removes a shortcut an earlier run left pinned: its sockops link and its sk_msg program. */
  private static void detachSkMsg(Path pinDir) throws IOException {
    Path link = pinDir.resolve(SKMSG_SOCKOPS_LINK);
    if (Files.exists(link)) {
      detachPinned(link);
      log.info("sk_msg shortcut: detached {}", link);
    }
    Path pin = pinDir.resolve(SKMSG_PROG);
    Path map = pinDir.resolve(SKMSG_SOCKS);
    if (Files.exists(pin) && Files.exists(map)) {
      int progFd = Bpf.check(Bpf.lib().bpf_obj_get(pin.toString()), "bpf_obj_get", pin.toString());
      try {
        int mapFd = Bpf.check(Bpf.lib().bpf_obj_get(map.toString()), "bpf_obj_get", map.toString());
        try {
          int rc = Bpf.lib().bpf_prog_detach2(progFd, mapFd, Bpf.BPF_SK_MSG_VERDICT);
          if (rc < 0 && -rc != ENOENT) {
            Bpf.check(rc, "bpf_prog_detach2", SKMSG + " from " + map);
          }
        } finally {
          Native.close(mapFd);
        }
      } finally {
        Native.close(progFd);
      }
    }
    Files.deleteIfExists(pin);
  }

  private static final int ENOENT = 2;

  /**
   * Swaps the freshly loaded sk_lookup program into every pod's pinned inbound link (a restarted
   * proxy); a link whose namespace is gone is unpinned. Returns whether any link was adopted.
   */
  private static boolean adoptInboundLinks(Pointer obj, Path pinDir) throws IOException {
    Pointer prog = Bpf.findProgram(obj, INBOUND);
    boolean any = false;
    for (Path pin : inboundPins(pinDir)) {
      Pointer link = Bpf.openLink(pin.toString());
      try {
        int rc = Bpf.lib().bpf_link__update_program(link, prog);
        if (rc < 0) {
          log.info(
              "unpinning inbound link {}: {} (its namespace is gone)",
              pin,
              dev.nodemesh.bpf.ffi.Errno.describe(-rc));
          Files.deleteIfExists(pin);
        } else {
          any = true;
        }
      } finally {
        Bpf.lib().bpf_link__destroy(link); // closes this handle only: the pin holds the link
      }
    }
    return any;
  }

  private static List<Path> inboundPins(Path pinDir) throws IOException {
    if (!Files.isDirectory(pinDir)) {
      return List.of();
    }
    try (var files = Files.list(pinDir)) {
      return files.filter(f -> f.getFileName().toString().startsWith(INBOUND_LINK)).toList();
    }
  }

  private Path inboundPin(long netnsCookie) {
    return pinDir.resolve(INBOUND_LINK + Long.toHexString(netnsCookie));
  }

  /** The map sizes the object declares must match the Java mirrors, or nothing is loaded. */
  private static void checkMirrors(Pointer obj) throws BpfException {
    expect(obj, POD_NETNS, 8, PodConfig.SIZE);
    expect(obj, ORIG_BY_COOKIE, 8, OrigDst.SIZE);
    expect(obj, ORIG_BY_PEER, PeerKey.SIZE, OrigDst.SIZE);
    expect(obj, ORIG6_BY_COOKIE, 8, OrigDst6.SIZE);
    expect(obj, ORIG6_BY_PEER, PeerKey6.SIZE, OrigDst6.SIZE);
    expect(obj, INBOUND_PODS, InboundKey.SIZE, InboundConfig.SIZE);
    expect(obj, INBOUND_LISTENER, InboundKey.SIZE, 8);
    expect(obj, SKMSG_SOCKS, SockKey.SIZE, 8);
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

  /** Something done with the object or map fds; runs only while they are open. */
  @FunctionalInterface
  private interface HandleUse<T, E extends Exception> {
    T apply() throws E;
  }

  private <T, E extends Exception> T whileOpen(HandleUse<T, E> use) throws E {
    Lock read = handles.readLock();
    read.lock();
    try {
      if (closed) {
        throw new IllegalStateException(
            "eBPF interception handles already closed (" + pinDir + ")");
      }
      return use.apply();
    } finally {
      read.unlock();
    }
  }

  private int mapFd(String map) throws BpfException {
    Integer fd = mapFds.get(map);
    if (fd == null) {
      fd = Bpf.check(Bpf.lib().bpf_map__fd(Bpf.findMap(object, map)), "bpf_map__fd", map);
      mapFds.put(map, fd);
    }
    return fd;
  }

  /** Starts redirecting the namespace with this cookie (see NetworkNamespace#cookie). */
  public void register(long netnsCookie, PodConfig config) throws BpfException {
    whileOpen(
        () -> {
          Bpf.update(mapFd(POD_NETNS), PodConfig.key(netnsCookie), config.encode(), POD_NETNS);

          return true;
        });
  }

  /** Stops redirecting new connects from that namespace; returns false if it was not registered. */
  public boolean unregister(long netnsCookie) throws BpfException {
    return whileOpen(
        () -> {
          return Bpf.delete(mapFd(POD_NETNS), PodConfig.key(netnsCookie), POD_NETNS);
        });
  }

  public Optional<PodConfig> registration(long netnsCookie) throws BpfException {
    return whileOpen(
        () -> {
          byte[] v =
              Bpf.lookup(mapFd(POD_NETNS), PodConfig.key(netnsCookie), PodConfig.SIZE, POD_NETNS);
          return v == null ? Optional.empty() : Optional.of(PodConfig.decode(v));
        });
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
    whileOpen(
        () -> {
          if (addresses.isEmpty()) {
            throw new IllegalArgumentException("no addresses to capture for " + netns);
          }
          List<InetAddress> added = new ArrayList<>();
          byte[] fd = PodConfig.key(listenerFd);
          try {
            for (InetAddress a : addresses) {
              byte[] key = new InboundKey(a).encode();
              Bpf.update(mapFd(INBOUND_LISTENER), key, fd, INBOUND_LISTENER + " " + a);
              added.add(a);
              Bpf.update(mapFd(INBOUND_PODS), key, config.encode(), INBOUND_PODS + " " + a);
            }
            Path pin = inboundPin(netnsCookie);
            Pointer prog = Bpf.findProgram(object, INBOUND);
            if (Files.exists(pin)) {
              Pointer link = Bpf.openLink(pin.toString());
              try {
                Bpf.check(
                    Bpf.lib().bpf_link__update_program(link, prog),
                    "bpf_link__update_program",
                    INBOUND + " into " + pin);
              } finally {
                Bpf.lib().bpf_link__destroy(link);
              }
            } else {
              int nsFd = Native.open(netns.toString(), Native.O_RDONLY | Native.O_CLOEXEC);
              try {
                Pointer link = Bpf.attachNetns(prog, nsFd, INBOUND + " to " + netns);
                try {
                  Bpf.check(
                      Bpf.lib().bpf_link__pin(link, pin.toString()),
                      "bpf_link__pin",
                      pin.toString());
                } finally {
                  Bpf.lib().bpf_link__destroy(link); // detaches unless the pin above took hold
                }
              } finally {
                Native.close(nsFd);
              }
            }
          } catch (IOException | RuntimeException e) {
            for (InetAddress a : added) {
              byte[] key = new InboundKey(a).encode();
              try {
                Bpf.delete(mapFd(INBOUND_PODS), key, INBOUND_PODS);
                Bpf.delete(mapFd(INBOUND_LISTENER), key, INBOUND_LISTENER);
              } catch (BpfException cleanup) {
                e.addSuppressed(cleanup);
              }
            }
            throw e;
          }

          return true;
        });
  }

  /**
   * Stops inbound capture for a pod: detaches and unpins its sk_lookup link (found by netns cookie)
   * and forgets its addresses. Returns false if no link was pinned for it.
   */
  public boolean unregisterInbound(long netnsCookie, Collection<InetAddress> addresses)
      throws IOException {
    return whileOpen(
        () -> {
          Path pin = inboundPin(netnsCookie);
          boolean linked = Files.exists(pin);
          if (linked) {
            detachPinned(pin);
          }
          for (InetAddress a : addresses) {
            byte[] key = new InboundKey(a).encode();
            Bpf.delete(mapFd(INBOUND_PODS), key, INBOUND_PODS);
            Bpf.delete(mapFd(INBOUND_LISTENER), key, INBOUND_LISTENER);
          }
          return linked;
        });
  }

  private static void detachPinned(Path pin) throws IOException {
    Pointer link = Bpf.openLink(pin.toString());
    try {
      int rc = Bpf.lib().bpf_link__detach(link);
      if (rc < 0 && -rc != ENOLINK) {
        Bpf.check(rc, "bpf_link__detach", pin.toString());
      }
    } finally {
      Bpf.lib().bpf_link__destroy(link);
    }
    Files.deleteIfExists(pin);
  }

  private static final int ENOLINK = 67;

  private static void deletePin(Path pin, List<IOException> failures) {
    try {
      Files.deleteIfExists(pin);
    } catch (IOException e) {
      failures.add(e);
    }
  }

  /** True while an inbound link is pinned for the namespace with this cookie. */
  public boolean inboundAttached(long netnsCookie) {
    return Files.exists(inboundPin(netnsCookie));
  }

  /** The inbound config registered for a pod address, if any. */
  public Optional<InboundConfig> inboundRegistration(InetAddress address) throws BpfException {
    return whileOpen(
        () -> {
          byte[] v =
              Bpf.lookup(
                  mapFd(INBOUND_PODS),
                  new InboundKey(address).encode(),
                  InboundConfig.SIZE,
                  INBOUND_PODS);
          return v == null ? Optional.empty() : Optional.of(InboundConfig.decode(v));
        });
  }

  /** Whether a listening socket is in place for a pod address (gone when the proxy closed it). */
  public boolean inboundListenerPresent(InetAddress address) throws BpfException {
    return whileOpen(
        () -> {
          return Bpf.lookup(
                  mapFd(INBOUND_LISTENER), new InboundKey(address).encode(), 8, INBOUND_LISTENER)
              != null;
        });
  }

  /**
   * The original destination of a redirected connection, looked up by the accepted socket's peer
   * and its namespace's cookie: the map path, for a proxy whose accepted sockets are outside the
   * cgroup the getsockopt program is attached to.
   */
  public Optional<InetSocketAddress> originalDestination(long netnsCookie, InetSocketAddress peer)
      throws BpfException {
    return whileOpen(
        () -> {
          if (peer.getAddress() instanceof java.net.Inet6Address) {
            byte[] v6 =
                Bpf.lookup(
                    mapFd(ORIG6_BY_PEER),
                    new PeerKey6(netnsCookie, peer).encode(),
                    OrigDst6.SIZE,
                    ORIG6_BY_PEER);
            return v6 == null ? Optional.empty() : Optional.of(OrigDst6.decode(v6).destination());
          }
          byte[] v =
              Bpf.lookup(
                  mapFd(ORIG_BY_PEER),
                  new PeerKey(netnsCookie, peer).encode(),
                  OrigDst.SIZE,
                  ORIG_BY_PEER);
          return v == null ? Optional.empty() : Optional.of(OrigDst.decode(v).destination());
        });
  }

  /**
   * Whether this end of a pod-to-proxy connection is in the sk_msg shortcut's map (key: the
   * socket's own view, see {@link SockKey}).
   */
  public boolean shortcutHolds(SockKey key) throws BpfException {
    return whileOpen(
        () -> {
          return Bpf.lookup(mapFd(SKMSG_SOCKS), key.encode(), 8, SKMSG_SOCKS) != null;
        });
  }

  /** How many entries a map holds now (walks the keys: for tests and diagnostics). */
  public int entries(String map) throws BpfException {
    return whileOpen(
        () -> {
          int keySize = Bpf.lib().bpf_map__key_size(Bpf.findMap(object, map));
          return Bpf.count(mapFd(map), keySize, map);
        });
  }

  /** Lets go of this process's handles; programs, links and maps stay pinned and attached. */
  @Override
  public void close() {
    Lock write = handles.writeLock();
    write.lock();
    try {
      if (closed) {
        return;
      }
      closed = true;
    } finally {
      write.unlock();
    }
    // Not bpf_link__disconnect first: for an fd-based link libbpf's "detach" is close(fd), so a
    // disconnected link's fd was never closed (one leaked fd per link and close). Closing the fd
    // leaves the link attached: its pin holds it (every link here is pinned, or install failed).
    for (Pointer l : links) {
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
      for (String link : PROGRAMS.values()) {
        deletePin(pinDir.resolve(link), failures);
      }
      try {
        detachSkMsg(pinDir); // this run's link is detached above; the sk_msg program and pins here
      } catch (IOException e) {
        failures.add(e);
      }
      try {
        for (Path pin : inboundPins(pinDir)) {
          try {
            detachPinned(pin);
          } catch (IOException e) {
            failures.add(e);
          }
        }
      } catch (IOException e) {
        failures.add(e);
      }
      for (String map : MAPS) {
        deletePin(pinDir.resolve(map), failures);
      }
    } finally {
      close();
    }
    deletePin(pinDir, failures);
    if (!failures.isEmpty()) {
      IOException first = failures.get(0);
      failures.stream().skip(1).forEach(first::addSuppressed);
      throw first;
    }
    log.info("eBPF interception detached and unpinned ({})", pinDir);
  }
}
