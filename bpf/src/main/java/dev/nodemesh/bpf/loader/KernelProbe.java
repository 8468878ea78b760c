package dev.nodemesh.bpf.loader;

import dev.nodemesh.bpf.ffi.Bpf;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Whether this kernel and process can run eBPF interception: libbpf loadable, BTF present, a cgroup
 * v2 and a bpffs mounted, and each program type nodemesh loads accepted by the kernel (which also
 * proves the bpf syscall works for this process). {@link #reasons()} says why not, for the log line
 * when the proxy falls back to iptables.
 */
public record KernelProbe(List<String> reasons, Optional<Path> cgroup2, Optional<Path> bpffs) {
  public KernelProbe {
    reasons = List.copyOf(reasons);
  }

  public boolean available() {
    return reasons.isEmpty();
  }

  public static KernelProbe run() {
    List<String> why = new ArrayList<>();
    if (!Files.exists(Path.of("/sys/kernel/btf/vmlinux"))) {
      why.add("no kernel BTF at /sys/kernel/btf/vmlinux");
    }
    Optional<Path> cgroup2 = Optional.empty();
    Optional<Path> bpffs = Optional.empty();
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/mounts"))) {
        String[] f = line.split(" ");
        if (f.length > 2 && f[2].equals("cgroup2") && cgroup2.isEmpty()) {
          cgroup2 = Optional.of(Path.of(f[1]));
        }
        if (f.length > 2 && f[2].equals("bpf") && bpffs.isEmpty()) {
          bpffs = Optional.of(Path.of(f[1]));
        }
      }
    } catch (IOException e) {
      why.add("cannot read /proc/self/mounts: " + e.getMessage());
    }
    if (cgroup2.isEmpty()) {
      why.add("no cgroup2 mounted");
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
                  + (rc < 0 ? " (" + dev.nodemesh.bpf.ffi.Errno.describe(-rc) + ")" : ""));
        }
      }
    } catch (UnsatisfiedLinkError | RuntimeException e) {
      why.add("libbpf.so.1 not loadable: " + e.getMessage());
    }
    return new KernelProbe(why, cgroup2, bpffs);
  }

  @Override
  public String toString() {
    return available() ? "eBPF available" : "eBPF unavailable: " + String.join("; ", reasons);
  }
}
