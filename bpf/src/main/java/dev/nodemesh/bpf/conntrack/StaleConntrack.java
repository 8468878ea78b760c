package dev.nodemesh.bpf.conntrack;

import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.ffi.NativeException;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import java.net.InetAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Predicate;

/**
 * Clears a network namespace's conntrack entries of TCP connections that went to a given range
 * untranslated: what a pod's connection to a service VIP made before capture leaves behind. Such an
 * entry outlives the connection (120 s in SYN_SENT, days when established), and while it lives the
 * kernel takes a new connection on the same ports for part of it, skips the nat table, and so the
 * REDIRECT: the connection goes to the VIP as-is and fails. Deleting the entry makes the next
 * packet start a new one that the nat rules see.
 *
 * <p>Over ctnetlink on a socket made in the namespace: first the namespace's entry count (nothing
 * more to do when it is 0, as for a pod enrolled at its start, before its app ran), else one dump
 * of the table, then one delete per matching entry, each acknowledged. Entries a NAT changed
 * (captured connections: the reply comes from the proxy's listener) and other protocols are left
 * alone.
 *
 * <p>Limits: an entry made between the dump and the deletes is not seen (the caller installs the
 * capture first, so a connection after that is captured anyway). A namespace where conntrack was
 * never used has an empty table; a kernel without ctnetlink ({@code EOPNOTSUPP}) counts as one.
 */
public final class StaleConntrack {
  private static final int EOPNOTSUPP = 95;
  private static final int ENOENT = 2;
  private static final int BUFFER = 256 * 1024;

  private StaleConntrack() {}

  /**
   * Deletes every TCP entry in {@code netns} whose original destination matches {@code destination}
   * and was not translated; returns how many were deleted.
   *
   * @throws NativeException when the socket, the dump or a delete fails (naming the call, errno)
   */
  public static int clear(NetworkNamespace netns, Predicate<InetAddress> destination)
      throws NativeException {
    int fd = open(netns);
    try {
      byte[] buf = new byte[BUFFER];
      if (count(fd, buf, netns) == 0) {
        return 0; // a pod enrolled at its start has no entries yet: no dump needed
      }
      List<CtNetlink.Entry> stale = new ArrayList<>();
      for (CtNetlink.Entry e : dump(fd, buf, netns, 2)) {
        if (e.original().protocol() == CtNetlink.IPPROTO_TCP
            && destination.test(e.original().dst())
            && e.destinationUntranslated()) {
          stale.add(e);
        }
      }
      int deleted = 0;
      int seq = 2;
      for (CtNetlink.Entry e : stale) {
        seq++;
        Native.send(fd, CtNetlink.deleteRequest(e, seq), "conntrack delete in " + netns.path());
        int errno = ack(fd, buf, netns);
        if (errno == 0) {
          deleted++;
        } else if (errno != ENOENT) { // ENOENT: it ended meanwhile, as wanted
          throw new NativeException("conntrack delete", e + " in " + netns.path(), errno);
        }
      }
      return deleted;
    } finally {
      Native.close(fd);
    }
  }

  /** Every conntrack entry of {@code netns} now, of every family and protocol. */
  public static List<CtNetlink.Entry> list(NetworkNamespace netns) throws NativeException {
    int fd = open(netns);
    try {
      return dump(fd, new byte[BUFFER], netns, 1);
    } finally {
      Native.close(fd);
    }
  }

  /** A ctnetlink socket in {@code netns}; the calling thread is back home when this returns. */
  private static int open(NetworkNamespace netns) throws NativeException {
    try (NetworkNamespace.Scope in = netns.enter()) {
      return Native.socket(
          Native.AF_NETLINK,
          Native.SOCK_RAW | Native.SOCK_CLOEXEC,
          Native.NETLINK_NETFILTER,
          "ctnetlink in " + netns.path());
    }
  }

  private static List<CtNetlink.Entry> dump(int fd, byte[] buf, NetworkNamespace netns, int seq)
      throws NativeException {
    List<CtNetlink.Entry> all = new ArrayList<>();
    Native.send(fd, CtNetlink.dumpRequest(seq), "conntrack dump in " + netns.path());
    while (true) {
      CtNetlink.Batch batch =
          CtNetlink.read(buf, Native.recv(fd, buf, "conntrack dump in " + netns.path()));
      all.addAll(batch.entries());
      if (batch.done()) {
        if (batch.errno() == EOPNOTSUPP) {
          return List.of(); // no ctnetlink in this kernel: no table
        }
        if (batch.errno() != 0) {
          throw new NativeException("conntrack dump", netns.path(), batch.errno());
        }
        return all;
      }
    }
  }

  /**
   * How many entries the namespace's table holds (-1: unknown). Asked first because a dump walks
   * the kernel's whole conntrack hash table, every namespace's buckets (milliseconds on a node with
   * a large table), to return only this namespace's entries, where the count is one lookup.
   */
  private static long count(int fd, byte[] buf, NetworkNamespace netns) throws NativeException {
    Native.send(fd, CtNetlink.statsRequest(1), "conntrack statistics in " + netns.path());
    return CtNetlink.entryCount(
        buf, Native.recv(fd, buf, "conntrack statistics in " + netns.path()));
  }

  private static int ack(int fd, byte[] buf, NetworkNamespace netns) throws NativeException {
    while (true) {
      CtNetlink.Batch b =
          CtNetlink.read(buf, Native.recv(fd, buf, "conntrack delete in " + netns.path()));
      if (b.done()) {
        return b.errno();
      }
    }
  }
}
