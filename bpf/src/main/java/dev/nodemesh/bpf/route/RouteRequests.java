package dev.nodemesh.bpf.route;

import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import java.util.List;
import java.util.Set;
import java.util.function.IntFunction;

/**
 * Sends {@link RtNetlink} requests on a rtnetlink socket made inside a network namespace, one at a
 * time, each acknowledged, in a few microseconds where spawning {@code ip} through {@code nsenter}
 * takes milliseconds. An errno a request tolerates (EEXIST for adding what is there, ENOENT or
 * ESRCH for deleting what is not) counts as done; any other stops the sequence with a {@link
 * NativeException} naming the request, the namespace and the errno.
 */
public final class RouteRequests {
  public static final int ENOENT = 2;
  public static final int ESRCH = 3;
  public static final int EEXIST = 17;

  /** A namespace without IPv6 (disabled), asked to delete IPv6 routing: nothing to delete. */
  public static final int EAFNOSUPPORT = 97;

  private RouteRequests() {}

  /**
   * One request: what it does (for errors), its message given a sequence number, and the errnos
   * that mean its goal is met already.
   */
  public record Request(String what, IntFunction<byte[]> message, Set<Integer> tolerated) {
    public Request {
      tolerated = Set.copyOf(tolerated);
    }
  }

  /** Runs {@code requests} in order inside {@code netns}; the calling thread stays at home. */
  public static void run(NetworkNamespace netns, List<Request> requests) throws NativeException {
    int fd;
    try (NetworkNamespace.Scope in = netns.enter()) {
      fd =
          Native.socket(
              Native.AF_NETLINK,
              Native.SOCK_RAW | Native.SOCK_CLOEXEC,
              Native.NETLINK_ROUTE,
              "rtnetlink in " + netns.path());
    }
    try {
      byte[] buf = new byte[8192];
      int seq = 0;
      for (Request r : requests) {
        seq++;
        String what = r.what() + " in " + netns.path();
        Native.send(fd, r.message().apply(seq), what);
        int errno;
        do {
          errno = RtNetlink.ack(buf, Native.recv(fd, buf, what), seq);
        } while (errno < 0);
        if (errno != 0 && !r.tolerated().contains(errno)) {
          throw new NativeException("rtnetlink", what, errno);
        }
      }
    } finally {
      Native.close(fd);
    }
  }
}
