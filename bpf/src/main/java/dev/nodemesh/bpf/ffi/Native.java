package dev.nodemesh.bpf.ffi;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import jnr.ffi.byref.IntByReference;

/**
 * Typed wrappers over {@link LibC}: each returns a value or throws {@link NativeException} with the
 * call, its target and errno. The one place nodemesh talks to libc.
 */
public final class Native {
  public static final int O_RDONLY = 0;
  public static final int O_CLOEXEC = 0x80000;
  public static final int O_DIRECTORY = 0x10000;
  public static final int AF_INET = 2;
  public static final int SOCK_STREAM = 1;
  public static final int SOCK_CLOEXEC = 0x80000;
  public static final int CLONE_NEWNET = 0x40000000;
  public static final int SOL_IP = 0;
  public static final int SOL_SOCKET = 1;
  public static final int SOL_IPV6 = 41;
  public static final int SO_ORIGINAL_DST = 80;
  public static final int SO_MARK = 36;
  public static final int SO_COOKIE = 57;
  public static final int SO_NETNS_COOKIE = 71;
  public static final int RLIMIT_NOFILE = 7;
  public static final int AF_NETLINK = 16;
  public static final int SOCK_RAW = 3;
  public static final int NETLINK_NETFILTER = 12;
  public static final int NETLINK_ROUTE = 0;

  private static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
  private static final Runtime RUNTIME = Runtime.getRuntime(LIBC);

  private Native() {}

  public static LibC libc() {
    return LIBC;
  }

  public static Runtime runtime() {
    return RUNTIME;
  }

  public static int lastErrno() {
    return RUNTIME.getLastError();
  }

  public static int open(String path, int flags) throws NativeException {
    int fd = LIBC.open(path, flags);
    if (fd < 0) {
      throw new NativeException("open", path, lastErrno());
    }
    return fd;
  }

  public static void close(int fd) throws NativeException {
    if (LIBC.close(fd) != 0) {
      throw new NativeException("close", "fd " + fd, lastErrno());
    }
  }

  public static int socket(int domain, int type, int protocol, String what) throws NativeException {
    int fd = LIBC.socket(domain, type, protocol);
    if (fd < 0) {
      throw new NativeException("socket", what, lastErrno());
    }
    return fd;
  }

  /** Sends all of {@code msg} in one call (a netlink request is one datagram). */
  public static void send(int fd, byte[] msg, String what) throws NativeException {
    long n = LIBC.send(fd, msg, msg.length, 0);
    if (n < 0) {
      throw new NativeException("send", what, lastErrno());
    }
    if (n != msg.length) {
      throw new NativeException("send", what + ": " + n + " of " + msg.length + " bytes", 0);
    }
  }

  /** Receives one datagram into {@code buf}; returns its length (never more than the buffer). */
  public static int recv(int fd, byte[] buf, String what) throws NativeException {
    long n = LIBC.recv(fd, buf, buf.length, 0);
    if (n < 0) {
      throw new NativeException("recv", what, lastErrno());
    }
    return (int) n;
  }

  /** {soft, hard} of resource limit {@code resource} of this process. */
  public static long[] getrlimit(int resource) throws NativeException {
    long[] limits = new long[2];
    if (LIBC.getrlimit(resource, limits) != 0) {
      throw new NativeException("getrlimit", "resource " + resource, lastErrno());
    }
    return limits;
  }

  /** Sets resource limit {@code resource} of this process to {@code soft} and {@code hard}. */
  public static void setrlimit(int resource, long soft, long hard) throws NativeException {
    if (LIBC.setrlimit(resource, new long[] {soft, hard}) != 0) {
      throw new NativeException("setrlimit", "resource " + resource, lastErrno());
    }
  }

  public static void setns(int fd, int nstype, String what) throws NativeException {
    if (LIBC.setns(fd, nstype) != 0) {
      throw new NativeException("setns", what, lastErrno());
    }
  }

  /**
   * Reads a socket option into a fresh buffer of {@code size} bytes; returns the bytes set. The
   * option buffers here are heap memory that jnr-ffi copies for the call: these run per proxied
   * connection (SO_ORIGINAL_DST, SO_MARK), and direct memory would cost a native allocation and a
   * cleaner registration each time.
   */
  public static byte[] getsockopt(int fd, int level, int name, int size, String what)
      throws NativeException {
    Pointer buf = Memory.allocate(RUNTIME, size);
    IntByReference len = new IntByReference(size);
    if (LIBC.getsockopt(fd, level, name, buf, len) != 0) {
      throw new NativeException("getsockopt", what, lastErrno());
    }
    int n = Math.min(len.intValue(), size);
    byte[] out = new byte[n];
    buf.get(0, out, 0, n);
    return out;
  }

  public static long getsockoptLong(int fd, int level, int name, String what)
      throws NativeException {
    Pointer buf = Memory.allocate(RUNTIME, 8);
    IntByReference len = new IntByReference(8);
    if (LIBC.getsockopt(fd, level, name, buf, len) != 0) {
      throw new NativeException("getsockopt", what, lastErrno());
    }
    return buf.getLong(0);
  }

  public static void setsockoptInt(int fd, int level, int name, int value, String what)
      throws NativeException {
    Pointer buf = Memory.allocate(RUNTIME, 4);
    buf.putInt(0, value);
    if (LIBC.setsockopt(fd, level, name, buf, 4) != 0) {
      throw new NativeException("setsockopt", what, lastErrno());
    }
  }
}
