package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import jnr.ffi.Pointer;

/**
 * Removing what is pinned under the bpffs directory: a pinned link detached and unpinned, a pin
 * deleted with its failure collected. Shared by the cgroup programs, the inbound links and the
 * sk_msg shortcut, which all tolerate a link whose target is already gone.
 */
final class Pins {
  static final int ENOENT = 2;
  static final int ENOLINK = 67;

  private Pins() {}

  /** Detaches the link pinned at {@code pin} (already detached is fine) and removes the pin. */
  static void detachPinned(Path pin) throws IOException {
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

  /** Deletes {@code pin} if present; a failure is added to {@code failures}, not thrown. */
  static void deletePin(Path pin, List<IOException> failures) {
    try {
      Files.deleteIfExists(pin);
    } catch (IOException e) {
      failures.add(e);
    }
  }
}
