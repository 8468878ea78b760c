package dev.nodemesh.bpf.ffi;

/** Renders an errno value as {@code errno 2 (No such file or directory)} using strerror(3). */
public final class Errno {
  private Errno() {}

  public static String describe(int errno) {
    String text;
    try {
      text = Native.libc().strerror(errno);
    } catch (RuntimeException | LinkageError e) {
      text = "unknown";
    }
    return "errno " + errno + " (" + text + ")";
  }
}
