package dev.nodemesh.bpf.ffi;

import java.io.IOException;

/** A failed native call: names the call, what it was applied to, and errno. */
public final class NativeException extends IOException {
  private static final long serialVersionUID = 1L;

  private final String call;
  private final int errno;

  public NativeException(String call, String target, int errno) {
    super(call + "(" + target + ") failed: " + Errno.describe(errno));
    this.call = call;
    this.errno = errno;
  }

  public String call() {
    return call;
  }

  public int errno() {
    return errno;
  }
}
