package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.loader.InterceptionPrograms;
import dev.nodemesh.bpf.testing.TestBpffs;
import dev.nodemesh.bpf.testing.TestCgroup;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The two interception modes a root test runs in, for
 * {@code @ParameterizedClass @EnumSource(Interception.class)}. {@link #setUp()} gives the per-test
 * part that eBPF mode needs (a test cgroup and a bpffs per node, removed at close); a {@link
 * TestNode} started with a mode from it runs its pod commands ({@link TestNode#curl}, {@link
 * TestNode#podCommand}) inside that node's cgroup, since a cgroup hook sees only sockets of
 * processes in the cgroup.
 *
 * <p>Limit: in eBPF mode only processes are intercepted, never threads of this JVM, so a test whose
 * client is {@link TestNode#connect} (a socket made by the test itself) cannot run in eBPF mode;
 * {@link TestNode#podConnect} gives it a socket made by a pod process instead.
 */
public enum Interception {
  IPTABLES,
  EBPF;

  /** The modes for one test's nodes; close it after the nodes (their processes must be gone). */
  public Setup setUp() {
    return new Setup(this);
  }

  /** What one test made for its nodes' interception; everything is removed by {@link #close}. */
  public static final class Setup implements AutoCloseable {
    private final Interception kind;
    private final List<TestCgroup> cgroups = new ArrayList<>();
    private final List<TestBpffs> bpffs = new ArrayList<>();
    private final List<Path[]> attached = new ArrayList<>(); // {cgroup, pins}

    private Setup(Interception kind) {
      this.kind = kind;
    }

    public Interception kind() {
      return kind;
    }

    /** The mode for one more node: iptables, or eBPF on a cgroup and bpffs of its own. */
    public InterceptionMode nextNode() throws IOException {
      if (kind == IPTABLES) {
        return InterceptionMode.iptables();
      }
      TestCgroup cg = TestCgroup.create("im" + cgroups.size());
      cgroups.add(cg);
      TestBpffs fs = TestBpffs.mount();
      bpffs.add(fs);
      Path pins = fs.path().resolve("nodemesh");
      attached.add(new Path[] {cg.path(), pins});
      return InterceptionMode.ebpf(cg.path(), pins);
    }

    @Override
    public void close() throws Exception {
      Exception first = null;
      try {
        for (Path[] a : attached) {
          // The proxy leaves its programs pinned on purpose; adopt them once more to detach.
          if (Files.exists(a[1])) {
            InterceptionPrograms.install(a[0], a[1]).uninstall();
          }
        }
      } catch (Exception e) {
        first = e;
      }
      for (TestBpffs b : bpffs) {
        try {
          b.close();
        } catch (Exception e) {
          first = first == null ? e : first;
        }
      }
      for (TestCgroup c : cgroups) {
        try {
          c.close();
        } catch (Exception e) {
          first = first == null ? e : first;
        }
      }
      if (first != null) {
        throw first;
      }
    }
  }
}
