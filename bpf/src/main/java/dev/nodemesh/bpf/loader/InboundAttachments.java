package dev.nodemesh.bpf.loader;

import static dev.nodemesh.bpf.loader.InterceptionPrograms.INBOUND_LISTENER;
import static dev.nodemesh.bpf.loader.InterceptionPrograms.INBOUND_PODS;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import dev.nodemesh.bpf.ffi.Errno;
import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.maps.InboundConfig;
import dev.nodemesh.bpf.maps.InboundKey;
import dev.nodemesh.bpf.maps.PodConfig;
import java.io.IOException;
import java.net.InetAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import jnr.ffi.Pointer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Inbound capture: the sk_lookup program attached to each registered pod's network namespace (a
 * link pinned per namespace, named by its netns cookie), and the per-address maps that say which
 * listening socket takes a pod's inbound connections and which ports are excluded. Map reads and
 * writes are safe from any thread and throw {@link IllegalStateException} once the handles are
 * closed; registering one namespace from two threads at once is not supported.
 */
final class InboundAttachments {
  private static final Logger log = LoggerFactory.getLogger(InboundAttachments.class);

  /** The sk_lookup program, attached per pod namespace rather than to the cgroup. */
  static final String PROGRAM = "nm_inbound";

  /** Pin name prefix of a pod's inbound link; the rest is its netns cookie in hex. */
  private static final String LINK_PREFIX = "link_inbound_";

  private final Path pinDir;
  private final ObjectHandles handles;

  InboundAttachments(Path pinDir, ObjectHandles handles) {
    this.pinDir = pinDir;
    this.handles = handles;
  }

  /**
   * Swaps the freshly loaded sk_lookup program into every pod's pinned inbound link (a restarted
   * proxy); a link whose namespace is gone is unpinned. Returns whether any link was adopted.
   */
  static boolean adoptPinned(Pointer obj, Path pinDir) throws IOException {
    Pointer prog = Bpf.findProgram(obj, PROGRAM);
    boolean any = false;
    for (Path pin : pins(pinDir)) {
      Pointer link = Bpf.openLink(pin.toString());
      try {
        int rc = Bpf.lib().bpf_link__update_program(link, prog);
        if (rc < 0) {
          log.info(
              "unpinning inbound link {}: {} (its namespace is gone)", pin, Errno.describe(-rc));
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

  /** Detaches and unpins every pod's inbound link; failures are collected, the rest still tried. */
  static void detachAll(Path pinDir, List<IOException> failures) {
    try {
      for (Path pin : pins(pinDir)) {
        try {
          Pins.detachPinned(pin);
        } catch (IOException e) {
          failures.add(e);
        }
      }
    } catch (IOException e) {
      failures.add(e);
    }
  }

  private static List<Path> pins(Path pinDir) throws IOException {
    if (!Files.isDirectory(pinDir)) {
      return List.of();
    }
    try (var files = Files.list(pinDir)) {
      return files.filter(f -> f.getFileName().toString().startsWith(LINK_PREFIX)).toList();
    }
  }

  private Path pin(long netnsCookie) {
    return pinDir.resolve(LINK_PREFIX + Long.toHexString(netnsCookie));
  }

  /** See {@link InterceptionPrograms#registerInbound}. */
  void register(
      Path netns,
      long netnsCookie,
      Collection<InetAddress> addresses,
      int listenerFd,
      InboundConfig config)
      throws IOException {
    handles.whileOpen(
        () -> {
          if (addresses.isEmpty()) {
            throw new IllegalArgumentException("no addresses to capture for " + netns);
          }
          List<InetAddress> added = new ArrayList<>();
          byte[] fd = PodConfig.key(listenerFd);
          try {
            for (InetAddress a : addresses) {
              byte[] key = new InboundKey(a).encode();
              Bpf.update(handles.mapFd(INBOUND_LISTENER), key, fd, INBOUND_LISTENER + " " + a);
              added.add(a);
              Bpf.update(handles.mapFd(INBOUND_PODS), key, config.encode(), INBOUND_PODS + " " + a);
            }
            attach(netns, netnsCookie);
          } catch (IOException | RuntimeException e) {
            for (InetAddress a : added) {
              byte[] key = new InboundKey(a).encode();
              try {
                Bpf.delete(handles.mapFd(INBOUND_PODS), key, INBOUND_PODS);
                Bpf.delete(handles.mapFd(INBOUND_LISTENER), key, INBOUND_LISTENER);
              } catch (BpfException cleanup) {
                e.addSuppressed(cleanup);
              }
            }
            throw e;
          }
          return true;
        });
  }

  /** Swaps the program into the namespace's pinned link, or attaches and pins a new one. */
  private void attach(Path netns, long netnsCookie) throws IOException {
    Path pin = pin(netnsCookie);
    Pointer prog = handles.program(PROGRAM);
    if (Files.exists(pin)) {
      Pointer link = Bpf.openLink(pin.toString());
      try {
        Bpf.check(
            Bpf.lib().bpf_link__update_program(link, prog),
            "bpf_link__update_program",
            PROGRAM + " into " + pin);
      } finally {
        Bpf.lib().bpf_link__destroy(link);
      }
    } else {
      int nsFd = Native.open(netns.toString(), Native.O_RDONLY | Native.O_CLOEXEC);
      try {
        Pointer link = Bpf.attachNetns(prog, nsFd, PROGRAM + " to " + netns);
        try {
          Bpf.check(Bpf.lib().bpf_link__pin(link, pin.toString()), "bpf_link__pin", pin.toString());
        } finally {
          Bpf.lib().bpf_link__destroy(link); // detaches unless the pin above took hold
        }
      } finally {
        Native.close(nsFd);
      }
    }
  }

  /** See {@link InterceptionPrograms#unregisterInbound}. */
  boolean unregister(long netnsCookie, Collection<InetAddress> addresses) throws IOException {
    return handles.whileOpen(
        () -> {
          Path pin = pin(netnsCookie);
          boolean linked = Files.exists(pin);
          if (linked) {
            Pins.detachPinned(pin);
          }
          for (InetAddress a : addresses) {
            byte[] key = new InboundKey(a).encode();
            Bpf.delete(handles.mapFd(INBOUND_PODS), key, INBOUND_PODS);
            Bpf.delete(handles.mapFd(INBOUND_LISTENER), key, INBOUND_LISTENER);
          }
          return linked;
        });
  }

  boolean attached(long netnsCookie) {
    return Files.exists(pin(netnsCookie));
  }

  Optional<InboundConfig> registration(InetAddress address) throws BpfException {
    return handles.whileOpen(
        () -> {
          byte[] v =
              Bpf.lookup(
                  handles.mapFd(INBOUND_PODS),
                  new InboundKey(address).encode(),
                  InboundConfig.SIZE,
                  INBOUND_PODS);
          return v == null ? Optional.empty() : Optional.of(InboundConfig.decode(v));
        });
  }

  boolean listenerPresent(InetAddress address) throws BpfException {
    return handles.whileOpen(
        () ->
            Bpf.lookup(
                    handles.mapFd(INBOUND_LISTENER),
                    new InboundKey(address).encode(),
                    8,
                    INBOUND_LISTENER)
                != null);
  }
}
