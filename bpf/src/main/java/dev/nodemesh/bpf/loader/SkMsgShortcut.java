package dev.nodemesh.bpf.loader;

import static dev.nodemesh.bpf.loader.InterceptionPrograms.SKMSG_SOCKS;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.maps.SockKey;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The optional sk_msg shortcut: a second sockops program (cgroup link, pinned like the others, see
 * {@link ProgramLoader}) that puts both ends of pod-to-proxy connections into {@link
 * InterceptionPrograms#SKMSG_SOCKS}, and the sk_msg program attached to that map (not a link:
 * pinned as a program so that a later run can detach it). The program is attached before the
 * sockops link, as a socket takes the map's programs when it is added.
 */
final class SkMsgShortcut {
  private static final Logger log = LoggerFactory.getLogger(SkMsgShortcut.class);

  /** The shortcut's sockops program and the pin name of its cgroup link. */
  static final String SOCKOPS = "nm_skmsg_sockops";

  static final String SOCKOPS_LINK = "link_skmsg_sockops";
  static final String SKMSG = "nm_skmsg";
  private static final String SKMSG_PROG = "prog_skmsg";

  private final ObjectHandles handles;

  SkMsgShortcut(ObjectHandles handles) {
    this.handles = handles;
  }

  /**
   * Attaches nm_skmsg to nm_skmsg_socks (replacing a program an earlier run attached) and pins it,
   * so that a later run without the shortcut, or uninstall, can name it to detach it. A pin this
   * call makes is added to {@code created}.
   */
  static void attach(Pointer obj, Path pinDir, List<Path> created) throws IOException {
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
  static void detach(Path pinDir) throws IOException {
    Path link = pinDir.resolve(SOCKOPS_LINK);
    if (Files.exists(link)) {
      Pins.detachPinned(link);
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
          if (rc < 0 && -rc != Pins.ENOENT) {
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

  /**
   * Whether this end of a pod-to-proxy connection is in the shortcut's map (key: the socket's own
   * view, see {@link SockKey}).
   */
  boolean holds(SockKey key) throws BpfException {
    return handles.whileOpen(
        () -> Bpf.lookup(handles.mapFd(SKMSG_SOCKS), key.encode(), 8, SKMSG_SOCKS) != null);
  }
}
