package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import dev.nodemesh.bpf.ffi.Errno;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.jspecify.annotations.Nullable;

/**
 * Whether this kernel and process can run eBPF interception: libbpf loadable, BTF present, a cgroup
 * v2 and a bpffs mounted, and each program type nodemesh loads accepted by the kernel (which also
 * proves the bpf syscall works for this process). {@link #run(Path, Path)} also checks the two
 * paths a node proxy was given: the attach cgroup must be a directory on a cgroup2 mount and the
 * pin directory must be (or be created) on a bpffs. {@link #reasons()} says why not, for the one
 * log line when the proxy falls back to iptables.
 *
 * <p>The probe loads nothing and attaches nothing; an attach can still fail after a clean probe
 * (e.g. a seccomp filter or an LSM refusing {@code BPF_LINK_CREATE}), which the caller handles the
 * same way.
 */
public record KernelProbe(List<String> reasons, Optional<Path> cgroup2, Optional<Path> bpffs) {
  private static final Path BTF = Path.of("/sys/kernel/btf/vmlinux");
  private static final Path MOUNTS = Path.of("/proc/self/mounts");

  public KernelProbe {
    reasons = List.copyOf(reasons);
  }

  /** A probe result saying eBPF is usable (for tests of the callers' decisions). */
  public static KernelProbe ok() {
    return new KernelProbe(List.of(), Optional.empty(), Optional.empty());
  }

  /** A probe result saying eBPF is not usable, for these reasons (for tests). */
  public static KernelProbe unavailable(String... reasons) {
    if (reasons.length == 0) {
      throw new IllegalArgumentException("an unavailable probe needs a reason");
    }
    return new KernelProbe(List.of(reasons), Optional.empty(), Optional.empty());
  }

  public boolean available() {
    return reasons.isEmpty();
  }

  /** The machine-wide checks only: BTF, some cgroup2 and bpffs mount, libbpf, program types. */
  public static KernelProbe run() {
    return probe(null, null);
  }

  /**
   * The machine-wide checks, plus: {@code cgroup} exists and is on a cgroup2 mount, and {@code
   * pinDir} (or its nearest existing parent, since install creates it) is on a bpffs.
   */
  public static KernelProbe run(Path cgroup, Path pinDir) {
    return probe(cgroup, pinDir);
  }

  private static KernelProbe probe(@Nullable Path cgroup, @Nullable Path pinDir) {
    List<String> why = new ArrayList<>();
    if (!Files.exists(BTF)) {
      why.add("no kernel BTF at " + BTF);
    }
    List<Mount> mounts = List.of();
    try {
      mounts = Mount.parse(Files.readAllLines(MOUNTS));
    } catch (IOException e) {
      why.add("cannot read " + MOUNTS + ": " + e.getMessage());
    }
    Optional<Path> cgroup2 =
        mounts.stream().filter(m -> m.type.equals("cgroup2")).map(m -> m.dir).findFirst();
    Optional<Path> bpffs =
        mounts.stream().filter(m -> m.type.equals("bpf")).map(m -> m.dir).findFirst();
    if (cgroup2.isEmpty()) {
      why.add("no cgroup2 mounted");
    }
    if (cgroup != null) {
      checkCgroup(cgroup, mounts).ifPresent(why::add);
    }
    if (pinDir != null) {
      checkPinDir(pinDir, mounts).ifPresent(why::add);
    }
    try {
      int[] types = {
        Bpf.BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
        Bpf.BPF_PROG_TYPE_SOCK_OPS,
        Bpf.BPF_PROG_TYPE_CGROUP_SOCKOPT,
        Bpf.BPF_PROG_TYPE_SK_LOOKUP
      };
      String[] names = {"cgroup_sock_addr", "sock_ops", "cgroup_sockopt", "sk_lookup"};
      for (int i = 0; i < types.length; i++) {
        int rc = Bpf.lib().libbpf_probe_bpf_prog_type(types[i], null);
        if (rc != 1) {
          why.add(
              "kernel refuses BPF program type "
                  + names[i]
                  + (rc < 0 ? " (" + Errno.describe(-rc) + ")" : ""));
        }
      }
    } catch (UnsatisfiedLinkError | RuntimeException e) {
      why.add("libbpf.so.1 not loadable: " + e.getMessage());
    }
    return new KernelProbe(why, cgroup2, bpffs);
  }

  /** Why {@code cgroup} cannot be an attach point, or empty when it can. */
  static Optional<String> checkCgroup(Path cgroup, List<Mount> mounts) {
    if (!Files.isDirectory(cgroup)) {
      return Optional.of("attach cgroup " + cgroup + " is not a directory");
    }
    Path real;
    try {
      real = cgroup.toRealPath();
    } catch (IOException e) {
      return Optional.of("attach cgroup " + cgroup + ": " + e.getMessage());
    }
    Optional<Mount> m = Mount.containing(real, mounts);
    if (m.isEmpty() || !m.get().type.equals("cgroup2")) {
      return Optional.of(
          "attach cgroup "
              + cgroup
              + " is not on a cgroup2 mount"
              + m.map(x -> " (it is on " + x.type + " at " + x.dir + ")").orElse(""));
    }
    return Optional.empty();
  }

  /** Why {@code pinDir} cannot hold pins, or empty when it can. */
  static Optional<String> checkPinDir(Path pinDir, List<Mount> mounts) {
    @Nullable Path existing = pinDir.toAbsolutePath().normalize();
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null) {
      return Optional.of("pin dir " + pinDir + " has no existing parent");
    }
    Path real;
    try {
      real = existing.toRealPath();
    } catch (IOException e) {
      return Optional.of("pin dir " + pinDir + ": " + e.getMessage());
    }
    Optional<Mount> m = Mount.containing(real, mounts);
    if (m.isEmpty() || !m.get().type.equals("bpf")) {
      return Optional.of(
          "pin dir "
              + pinDir
              + " is not on a bpffs"
              + m.map(x -> " (it is on " + x.type + " at " + x.dir + ")").orElse("")
              + "; mount one with: mount -t bpf bpf "
              + (existing.equals(pinDir) ? pinDir : existing));
    }
    return Optional.empty();
  }

  /** One line of /proc/self/mounts: where and what type. */
  record Mount(Path dir, String type) {
    static List<Mount> parse(List<String> lines) {
      List<Mount> out = new ArrayList<>();
      for (String line : lines) {
        String[] f = line.split(" ");
        if (f.length > 2) {
          out.add(new Mount(Path.of(unescape(f[1])), f[2]));
        }
      }
      return out;
    }

    /** The mount {@code path} is on: the last-mounted of those with the longest matching dir. */
    static Optional<Mount> containing(Path path, List<Mount> mounts) {
      @Nullable Mount best = null;
      for (Mount m : mounts) {
        if (path.startsWith(m.dir)
            && (best == null || m.dir.getNameCount() >= best.dir.getNameCount())) {
          best = m;
        }
      }
      return Optional.ofNullable(best);
    }

    /** The kernel writes space, tab, newline and backslash in mount points as \ooo (octal). */
    private static String unescape(String s) {
      if (s.indexOf('\\') < 0) {
        return s;
      }
      StringBuilder b = new StringBuilder();
      for (int i = 0; i < s.length(); i++) {
        char c = s.charAt(i);
        if (c == '\\' && i + 3 < s.length()) {
          try {
            b.append((char) Integer.parseInt(s.substring(i + 1, i + 4), 8));
            i += 3;
            continue;
          } catch (NumberFormatException e) {
            // not an escape: keep the backslash
          }
        }
        b.append(c);
      }
      return b.toString();
    }
  }

  @Override
  public String toString() {
    return available() ? "eBPF available" : "eBPF unavailable: " + String.join("; ", reasons);
  }
}
