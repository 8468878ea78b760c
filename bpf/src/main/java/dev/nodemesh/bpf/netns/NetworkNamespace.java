package dev.nodemesh.bpf.netns;

import dev.nodemesh.bpf.ffi.Native;
import dev.nodemesh.bpf.ffi.NativeException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * An open handle on a network namespace (a file such as {@code /var/run/netns/x} or {@code
 * /proc/<pid>/ns/net}). {@link #enter()} moves only the calling thread into it until the returned
 * scope closes; sockets created meanwhile belong to this namespace for their whole life, which is
 * how the proxy makes listeners and upstream sockets inside a pod while living in its own.
 *
 * <p>Limits: setns needs CAP_SYS_ADMIN; a thread that cannot switch back is unusable, so a failed
 * restore is an {@link IllegalStateException} (the caller must not keep using that thread).
 */
public final class NetworkNamespace implements AutoCloseable {
  private static final NetworkNamespace HOME = openHome();

  private final String path;
  private final int fd;
  private final long inode;
  private final AtomicBoolean closed = new AtomicBoolean();

  private NetworkNamespace(String path, int fd, long inode) {
    this.path = path;
    this.fd = fd;
    this.inode = inode;
  }

  /** Opens the namespace at {@code path}; fails with the path and errno if it is not one. */
  public static NetworkNamespace open(Path path) throws IOException {
    int fd = Native.open(path.toString(), Native.O_RDONLY | Native.O_CLOEXEC);
    try {
      return new NetworkNamespace(path.toString(), fd, inodeOf(path));
    } catch (IOException | RuntimeException e) {
      Native.close(fd);
      throw e;
    }
  }

  /** The namespace the process started in (its main thread's), where threads return to. */
  public static NetworkNamespace home() {
    return HOME;
  }

  private static NetworkNamespace openHome() {
    try {
      return open(Path.of("/proc/self/ns/net"));
    } catch (IOException e) {
      throw new IllegalStateException("cannot open the process's own network namespace", e);
    }
  }

  /** The namespace's inode: equal inodes mean the same namespace, whatever the path. */
  public static long inodeOf(Path path) throws IOException {
    Object ino = Files.getAttribute(path, "unix:ino");
    return ((Number) ino).longValue();
  }

  public String path() {
    return path;
  }

  public long inode() {
    return inode;
  }

  /**
   * The namespace's cookie ({@code SO_NETNS_COOKIE} of a socket made in it): the value eBPF
   * programs get from {@code bpf_get_netns_cookie}, stable for the namespace's life.
   */
  public long cookie() throws NativeException {
    try (Scope s = enter()) {
      int fd =
          Native.socket(
              Native.AF_INET, Native.SOCK_STREAM | Native.SOCK_CLOEXEC, 0, "cookie of " + path);
      try {
        return Native.getsockoptLong(
            fd, Native.SOL_SOCKET, Native.SO_NETNS_COOKIE, "SO_NETNS_COOKIE in " + path);
      } finally {
        Native.close(fd);
      }
    }
  }

  /**
   * Moves the calling thread into this namespace. Close the scope on the same thread to return it
   * to the process's home namespace.
   */
  public Scope enter() throws NativeException {
    if (closed.get()) {
      throw new IllegalStateException("network namespace " + path + " is closed");
    }
    Native.setns(fd, Native.CLONE_NEWNET, path);
    return new Scope(path);
  }

  /** Returns the calling thread to the home namespace when closed. */
  public static final class Scope implements AutoCloseable {
    private final String from;

    private Scope(String from) {
      this.from = from;
    }

    @Override
    public void close() {
      try {
        Native.setns(HOME.fd, Native.CLONE_NEWNET, "home netns after " + from);
      } catch (NativeException e) {
        throw new IllegalStateException("thread stuck in network namespace " + from, e);
      }
    }
  }

  @Override
  public void close() {
    if (this != HOME && closed.compareAndSet(false, true)) {
      try {
        Native.close(fd);
      } catch (NativeException e) {
        // The fd is gone either way; nothing to recover.
      }
    }
  }

  @Override
  public String toString() {
    return "netns " + path + " (inode " + inode + ")";
  }
}
