package dev.nodemesh.proxy.intercept;

import java.nio.file.Path;

/**
 * Which interception a node proxy uses, and where eBPF mode attaches and pins.
 *
 * @param kind iptables (the default), ebpf (required: the start fails if eBPF cannot be used), or
 *     auto (eBPF when the kernel probe and the attach succeed, else iptables with one log line)
 * @param cgroup the cgroup v2 directory holding the pods (ebpf and auto), e.g. the pod cgroup root
 * @param pinDir a directory on a bpffs for the pinned maps and links (ebpf and auto)
 * @param skMsg eBPF only: also attach the sk_msg shortcut between pod sockets and the proxy's
 *     in-pod outbound listener (an experiment, off by default; see bpf/README.md)
 */
public record InterceptionMode(Kind kind, Path cgroup, Path pinDir, boolean skMsg) {
  public InterceptionMode(Kind kind, Path cgroup, Path pinDir) {
    this(kind, cgroup, pinDir, false);
  }

  /** The same mode with the sk_msg shortcut on or off. */
  public InterceptionMode withSkMsg(boolean on) {
    return new InterceptionMode(kind, cgroup, pinDir, on);
  }

  /** The two ways of intercepting, and "eBPF if this node can, else iptables". */
  public enum Kind {
    IPTABLES,
    EBPF,
    AUTO
  }

  public static final Path DEFAULT_PIN_DIR = Path.of("/sys/fs/bpf/nodemesh");
  public static final Path DEFAULT_CGROUP = Path.of("/sys/fs/cgroup/unified");

  public static InterceptionMode iptables() {
    return new InterceptionMode(Kind.IPTABLES, DEFAULT_CGROUP, DEFAULT_PIN_DIR);
  }

  public static InterceptionMode ebpf(Path cgroup, Path pinDir) {
    return new InterceptionMode(Kind.EBPF, cgroup, pinDir);
  }

  /** eBPF when usable here, otherwise iptables (see {@link InterceptionSelector}). */
  public static InterceptionMode auto(Path cgroup, Path pinDir) {
    return new InterceptionMode(Kind.AUTO, cgroup, pinDir);
  }
}
