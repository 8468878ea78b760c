package dev.nodemesh.bpf.ffi;

import jnr.ffi.Pointer;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;
import jnr.ffi.annotations.SaveError;
import jnr.ffi.byref.IntByReference;

/**
 * The few libc calls nodemesh makes directly, bound through jnr-ffi. Every method saves errno so
 * that {@link Native} can turn a failure into a {@link NativeException} naming the call.
 */
public interface LibC {
  @SaveError
  int open(String path, int flags);

  @SaveError
  int close(int fd);

  @SaveError
  int socket(int domain, int type, int protocol);

  @SaveError
  int setns(int fd, int nstype);

  @SaveError
  int getsockopt(int fd, int level, int optname, @Out Pointer optval, IntByReference optlen);

  @SaveError
  int setsockopt(int fd, int level, int optname, @In Pointer optval, int optlen);

  /** For netlink requests; {@code len} and the result are {@code size_t}/{@code ssize_t}. */
  @SaveError
  long send(int fd, @In byte[] buf, long len, int flags);

  @SaveError
  long recv(int fd, @Out byte[] buf, long len, int flags);

  /** {@code rlim}: {soft, hard} ({@code struct rlimit} on 64-bit Linux). */
  @SaveError
  int getrlimit(int resource, @Out long[] rlim);

  @SaveError
  int setrlimit(int resource, @In long[] rlim);

  String strerror(int errnum);
}
