package dev.nodemesh.proxy.intercept;

import dev.nodemesh.bpf.loader.KernelProbe;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Picks the interception a node proxy starts with, from {@link InterceptionMode}:
 *
 * <ul>
 *   <li>{@code iptables}: iptables, nothing probed.
 *   <li>{@code ebpf} (required): probe the kernel and the configured cgroup and pin dir, then load
 *       and attach; any failure fails the start with the reasons.
 *   <li>{@code auto}: the same, but a failed probe or attach falls back to iptables with exactly
 *       one WARN line that names the reasons and says how to require eBPF instead.
 * </ul>
 *
 * <p>The probe and both interceptions are injected so the decision is unit-tested without a kernel
 * ({@code InterceptionSelectorTest}); {@link #forNode} wires the real ones.
 */
public final class InterceptionSelector {
  private static final Logger log = LoggerFactory.getLogger(InterceptionSelector.class);

  /** Probes the kernel for a mode (its cgroup and pin dir). */
  @FunctionalInterface
  public interface Probe {
    KernelProbe run(InterceptionMode mode);
  }

  /** Makes an interception; may throw when it cannot (an attach refused, rules not installable). */
  @FunctionalInterface
  public interface Starter {
    Interception start(InterceptionMode mode) throws IOException;
  }

  private final Probe probe;
  private final Starter ebpf;
  private final Starter iptables;
  private final Consumer<String> warn;

  public InterceptionSelector(Probe probe, Starter ebpf, Starter iptables, Consumer<String> warn) {
    this.probe = probe;
    this.ebpf = ebpf;
    this.iptables = iptables;
    this.warn = warn;
  }

  /** The real probe and interceptions, warnings to this class's logger. */
  public static InterceptionSelector forNode(Starter ebpf, Starter iptables) {
    return new InterceptionSelector(
        mode -> KernelProbe.run(mode.cgroup(), mode.pinDir()), ebpf, iptables, log::warn);
  }

  public Interception select(InterceptionMode mode) throws IOException {
    return switch (mode.kind()) {
      case IPTABLES -> iptables.start(mode);
      case EBPF -> {
        KernelProbe p = probe.run(mode);
        if (!p.available()) {
          throw new IOException(
              "--intercept=ebpf: "
                  + p
                  + " (use --intercept=auto to fall back to iptables instead)");
        }
        yield ebpf.start(mode);
      }
      case AUTO -> auto(mode);
    };
  }

  private Interception auto(InterceptionMode mode) throws IOException {
    KernelProbe p = probe.run(mode);
    String why;
    if (p.available()) {
      try {
        return ebpf.start(mode);
      } catch (IOException | RuntimeException e) {
        why = "eBPF attach failed: " + e.getMessage();
      }
    } else {
      why = p.toString();
    }
    Interception fallback = iptables.start(mode);
    warn.accept(
        "interception: iptables, falling back from --intercept=auto because "
            + why
            + staleNote(mode.pinDir())
            + " (--intercept=ebpf makes this a start failure)");
    return fallback;
  }

  /**
   * Links pinned by an earlier eBPF run keep redirecting registered pods while this proxy uses
   * iptables; the line says so, since removing them is an operator's decision (see bpf/README).
   */
  private static String staleNote(Path pinDir) {
    if (!Files.isDirectory(pinDir)) {
      return "";
    }
    try (Stream<Path> files = Files.list(pinDir)) {
      if (files.anyMatch(f -> f.getFileName().toString().startsWith("link_"))) {
        return "; programs pinned in "
            + pinDir
            + " by an earlier eBPF run are still attached: remove that directory to detach them";
      }
    } catch (IOException e) {
      return "";
    }
    return "";
  }
}
