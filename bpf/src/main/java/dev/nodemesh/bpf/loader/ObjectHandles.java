package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.BpfException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.Lock;
import java.util.concurrent.locks.ReadWriteLock;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import jnr.ffi.Pointer;

/**
 * This process's handles on the loaded {@code nodemesh.o}: the libbpf object, the ELF image it was
 * opened from, and the map fds resolved from it, shared by the outbound maps, the inbound
 * attachments and the sk_msg shortcut. Every use runs under the read lock ({@link #whileOpen}) and
 * {@link #close} takes the write lock, so a lookup on an event loop and a close on another thread
 * exclude each other (no freed object, no fd number reused under a lookup), and a use after close
 * throws {@link IllegalStateException}. Limits: closing frees only the handles; what is pinned
 * stays.
 */
final class ObjectHandles {
  private final Path pinDir;
  private final Pointer object;
  private final Pointer buffer; // libbpf may read the ELF image until the object is closed
  // Guards the libbpf object and the map fds against close() while another thread (an event loop
  // looking up an original destination) still uses them: a freed object or a reused fd number.
  private final ReadWriteLock lock = new ReentrantReadWriteLock();
  private boolean closed; // guarded by lock
  // Map name -> fd, resolved once: a lookup per captured connection (original destination) would
  // otherwise marshal the name and search the object's maps each time. Valid until close().
  private final Map<String, Integer> mapFds = new ConcurrentHashMap<>();

  ObjectHandles(Path pinDir, Pointer object, Pointer buffer) {
    this.pinDir = pinDir;
    this.object = object;
    this.buffer = buffer;
  }

  /** Something done with the object or map fds; runs only while they are open. */
  @FunctionalInterface
  interface HandleUse<T, E extends Exception> {
    T apply() throws E;
  }

  /** Runs {@code use} under the read lock; throws {@link IllegalStateException} once closed. */
  <T, E extends Exception> T whileOpen(HandleUse<T, E> use) throws E {
    Lock read = lock.readLock();
    read.lock();
    try {
      if (closed) {
        throw new IllegalStateException(
            "eBPF interception handles already closed (" + pinDir + ")");
      }
      return use.apply();
    } finally {
      read.unlock();
    }
  }

  /** The fd of {@code map}; call only inside {@link #whileOpen}. */
  int mapFd(String map) throws BpfException {
    Integer fd = mapFds.get(map);
    if (fd == null) {
      fd = Bpf.check(Bpf.lib().bpf_map__fd(Bpf.findMap(object, map)), "bpf_map__fd", map);
      mapFds.put(map, fd);
    }
    return fd;
  }

  /** A program of the object; call only inside {@link #whileOpen}. */
  Pointer program(String name) throws BpfException {
    return Bpf.findProgram(object, name);
  }

  /** The key size the object declares for {@code map}; call only inside {@link #whileOpen}. */
  int keySize(String map) throws BpfException {
    return Bpf.lib().bpf_map__key_size(Bpf.findMap(object, map));
  }

  boolean closed() {
    Lock read = lock.readLock();
    read.lock();
    try {
      return closed;
    } finally {
      read.unlock();
    }
  }

  /**
   * Marks the handles closed, waiting for uses in flight; returns false if they already were. The
   * caller then releases its links and calls {@link #freeObject}.
   */
  boolean markClosed() {
    Lock write = lock.writeLock();
    write.lock();
    try {
      if (closed) {
        return false;
      }
      closed = true;
      return true;
    } finally {
      write.unlock();
    }
  }

  /** Closes the libbpf object (its map and program fds); after {@link #markClosed} only. */
  void freeObject() {
    Bpf.lib().bpf_object__close(object);
  }

  long imageSize() {
    return buffer.size();
  }
}
