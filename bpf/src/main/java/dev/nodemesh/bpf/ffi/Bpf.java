package dev.nodemesh.bpf.ffi;

import jnr.ffi.LibraryLoader;
import jnr.ffi.Memory;
import jnr.ffi.Pointer;
import jnr.ffi.Runtime;
import org.jspecify.annotations.Nullable;

/**
 * Typed wrappers over {@link LibBpf}: each returns a value or throws {@link BpfException} naming
 * the call and its target. The one place nodemesh talks to libbpf; loading libbpf happens on first
 * use, so a machine without it fails only when eBPF is asked for.
 */
public final class Bpf {
  public static final int BPF_PROG_TYPE_SOCK_OPS = 13;
  public static final int BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18;
  public static final int BPF_PROG_TYPE_CGROUP_SOCKOPT = 25;
  public static final int BPF_PROG_TYPE_SK_LOOKUP = 30;
  public static final int BPF_ANY = 0;
  public static final int BPF_SK_MSG_VERDICT = 7;
  public static final int BTF_KIND_STRUCT = 4;
  private static final int ENOENT = 2;

  private Bpf() {}

  private static final class Holder {
    static final LibBpf LIB = LibraryLoader.create(LibBpf.class).load("libbpf.so.1");
    static final Runtime RUNTIME = Runtime.getRuntime(LIB);
  }

  /** The raw binding; loading it throws {@link UnsatisfiedLinkError} when libbpf is absent. */
  public static LibBpf lib() {
    return Holder.LIB;
  }

  public static Pointer allocate(int size) {
    return Memory.allocateDirect(Holder.RUNTIME, size, true);
  }

  public static Pointer copyOf(byte[] bytes) {
    Pointer p = Memory.allocateDirect(Holder.RUNTIME, Math.max(1, bytes.length), false);
    p.put(0, bytes, 0, bytes.length);
    return p;
  }

  private static int lastErrno() {
    return Holder.RUNTIME.getLastError();
  }

  private static Pointer nonNull(@Nullable Pointer p, String call, String target)
      throws BpfException {
    if (p == null || p.address() == 0) {
      throw new BpfException(call, target, lastErrno());
    }
    return p;
  }

  /** Checks an int result in libbpf's convention (negative errno on failure). */
  public static int check(int rc, String call, String target) throws BpfException {
    if (rc < 0) {
      throw new BpfException(call, target, -rc);
    }
    return rc;
  }

  public static Pointer openMem(Pointer buf, long size, String name) throws BpfException {
    return nonNull(lib().bpf_object__open_mem(buf, size, null), "bpf_object__open_mem", name);
  }

  public static Pointer findProgram(Pointer obj, String name) throws BpfException {
    return nonNull(
        lib().bpf_object__find_program_by_name(obj, name),
        "bpf_object__find_program_by_name",
        name);
  }

  public static Pointer findMap(Pointer obj, String name) throws BpfException {
    return nonNull(
        lib().bpf_object__find_map_by_name(obj, name), "bpf_object__find_map_by_name", name);
  }

  public static Pointer attachCgroup(Pointer prog, int cgroupFd, String what) throws BpfException {
    return nonNull(
        lib().bpf_program__attach_cgroup(prog, cgroupFd), "bpf_program__attach_cgroup", what);
  }

  public static Pointer attachNetns(Pointer prog, int netnsFd, String what) throws BpfException {
    return nonNull(
        lib().bpf_program__attach_netns(prog, netnsFd), "bpf_program__attach_netns", what);
  }

  public static Pointer parseBtf(String path) throws BpfException {
    return nonNull(lib().btf__parse(path, null), "btf__parse", path);
  }

  public static Pointer openLink(String path) throws BpfException {
    return nonNull(lib().bpf_link__open(path), "bpf_link__open", path);
  }

  public static void update(int mapFd, byte[] key, byte[] value, String map) throws BpfException {
    check(
        lib().bpf_map_update_elem(mapFd, copyOf(key), copyOf(value), BPF_ANY),
        "bpf_map_update_elem",
        map);
  }

  /** The value under {@code key}, or null when there is none. */
  public static byte @Nullable [] lookup(int mapFd, byte[] key, int valueSize, String map)
      throws BpfException {
    Pointer value = allocate(valueSize);
    int rc = lib().bpf_map_lookup_elem(mapFd, copyOf(key), value);
    if (rc == -ENOENT) {
      return null;
    }
    check(rc, "bpf_map_lookup_elem", map);
    byte[] out = new byte[valueSize];
    value.get(0, out, 0, valueSize);
    return out;
  }

  /** Deletes {@code key}; returns false when it was not there. */
  public static boolean delete(int mapFd, byte[] key, String map) throws BpfException {
    int rc = lib().bpf_map_delete_elem(mapFd, copyOf(key));
    if (rc == -ENOENT) {
      return false;
    }
    check(rc, "bpf_map_delete_elem", map);
    return true;
  }

  /** Counts a map's entries by walking its keys (for tests and diagnostics, not hot paths). */
  public static int count(int mapFd, int keySize, String map) throws BpfException {
    Pointer key = allocate(keySize);
    Pointer next = allocate(keySize);
    int n = 0;
    @Nullable Pointer from = null;
    while (true) {
      int rc = lib().bpf_map_get_next_key(mapFd, from, next);
      if (rc == -ENOENT) {
        return n;
      }
      check(rc, "bpf_map_get_next_key", map);
      n++;
      byte[] k = new byte[keySize];
      next.get(0, k, 0, keySize);
      key.put(0, k, 0, keySize);
      from = key;
    }
  }
}
