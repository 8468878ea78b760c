package dev.nodemesh.bpf.loader;

import static dev.nodemesh.bpf.loader.InterceptionPrograms.INBOUND_LISTENER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.INBOUND_PODS;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG6_BY_COOKIE;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG6_BY_PEER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG_BY_COOKIE;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.ORIG_BY_PEER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.POD_NETNS;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.SKMSG_SOCKS;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.SKMSG_TCP;

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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import jnr.ffi.Pointer;

/**
 * Loading {@code nodemesh.o} and attaching its cgroup programs, pinned or adopted: the maps are
 * pinned under the bpffs directory (a pinned map is reused, so registrations and live records
 * survive a restart), and each cgroup program's link is either attached and pinned or, when a pin
 * is there, taken over by swapping the new program in ({@code bpf_link__update_program}, atomic).
 * All or nothing: a failure removes the pins this load made and closes what it opened; pins that
 * were there before are never removed. Not thread-safe.
 */
final class ProgramLoader {
  private static final String OBJECT = "/bpf/nodemesh.o";
  private static final int LOG_SIZE = 1 << 20;

  /** Program name to the pin name of its link. Order: connect4 last, so records have a reader. */
  static final Map<String, String> PROGRAMS = new LinkedHashMap<>();

  static {
    PROGRAMS.put("nm_sockops", "link_sockops");
    PROGRAMS.put("nm_getsockopt", "link_getsockopt");
    PROGRAMS.put("nm_connect6", "link_connect6");
    PROGRAMS.put("nm_connect4", "link_connect4");
  }

  static final List<String> MAPS =
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

  /** What a load leaves open: the object, its ELF image, this run's cgroup link handles. */
  record Loaded(Pointer object, Pointer buffer, List<Pointer> links, boolean adopted) {}

  private ProgramLoader() {}

  /** See {@link InterceptionPrograms#install(Path, Path, boolean)}. */
  static Loaded load(Path cgroup, Path pinDir, boolean skMsg) throws IOException {
    Files.createDirectories(pinDir);
    byte[] elf;
    try (InputStream in = ProgramLoader.class.getResourceAsStream(OBJECT)) {
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
      loadObject(obj);
      if (skMsg) {
        // the sk_msg program first: a socket takes the map's programs when it is added
        SkMsgShortcut.attach(obj, pinDir, created);
      } else {
        SkMsgShortcut.detach(pinDir);
      }
      Map<String, String> cgroupPrograms = new LinkedHashMap<>(PROGRAMS);
      if (skMsg) {
        cgroupPrograms.put(SkMsgShortcut.SOCKOPS, SkMsgShortcut.SOCKOPS_LINK);
      }
      adopted = attachCgroup(obj, cgroup, pinDir, cgroupPrograms, links, created);
      adopted |= InboundAttachments.adoptPinned(obj, pinDir);
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
    return new Loaded(obj, buffer, links, adopted);
  }

  /** Loads every program (with a verifier log each, reported if the load fails). */
  private static void loadObject(Pointer obj) throws BpfException {
    Map<String, Pointer> logs = new LinkedHashMap<>();
    List<String> all = new ArrayList<>(PROGRAMS.keySet());
    all.add(InboundAttachments.PROGRAM);
    all.add(SkMsgShortcut.SOCKOPS);
    all.add(SkMsgShortcut.SKMSG);
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
  }

  /**
   * Attaches each program to the cgroup and pins its link, or swaps it into the link pinned for it.
   * Link handles go to {@code links}, new pins to {@code created}. Returns whether any was adopted.
   */
  private static boolean attachCgroup(
      Pointer obj,
      Path cgroup,
      Path pinDir,
      Map<String, String> programs,
      List<Pointer> links,
      List<Path> created)
      throws IOException {
    boolean adopted = false;
    int cgroupFd = Native.open(cgroup.toString(), Native.O_RDONLY | Native.O_DIRECTORY);
    try {
      for (Map.Entry<String, String> p : programs.entrySet()) {
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
    return adopted;
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
}
