package dev.nodemesh.bpf.ffi;

import java.io.IOException;

/**
 * A failed libbpf call: names the call, the program, map or path it was applied to, and errno. A
 * failed load carries the verifier's log in its message.
 */
public final class BpfException extends IOException {
  private static final long serialVersionUID = 1L;

  private final String call;
  private final int errno;

  public BpfException(String call, String target, int errno) {
    this(call, target, errno, "");
  }

  public BpfException(String call, String target, int errno, String detail) {
    super(
        call
            + "("
            + target
            + ") failed: "
            + Errno.describe(errno)
            + (detail.isEmpty() ? "" : "\n" + detail));
    this.call = call;
    this.errno = errno;
  }

  public String call() {
    return call;
  }

  /** The positive errno value. */
  public int errno() {
    return errno;
  }
}
