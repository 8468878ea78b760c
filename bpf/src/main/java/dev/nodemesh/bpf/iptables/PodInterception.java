package dev.nodemesh.bpf.iptables;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs and removes {@link RedirectRules} inside a pod's network namespace with iptables-restore
 * (and, for a pod with an IPv6 address, the same rules with ip6tables-restore), one transaction per
 * family each way, so a failure leaves the namespace as it was. Commands run through {@code nsenter
 * --net=<path>} because the pod's namespace is named by path.
 *
 * <p>Without IPv6 rules a pod's native IPv6 traffic is not captured; {@link #remove} clears both
 * families whatever was installed. Limits: every call forks a process, which is fine for pod
 * add/delete but not for anything per connection.
 */
public final class PodInterception {
  private static final Logger log = LoggerFactory.getLogger(PodInterception.class);
  private static final long TIMEOUT_SECONDS = 20;

  /** Which netfilter family a call is about: the binaries differ, the rules do not. */
  public enum Family {
    IPV4("iptables-restore", "iptables-save", "-4"),
    IPV6("ip6tables-restore", "ip6tables-save", "-6");

    final String restore;
    final String save;
    final String ip; // iproute2's family flag

    Family(String restore, String save, String ip) {
      this.restore = restore;
      this.save = save;
      this.ip = ip;
    }
  }

  private final RedirectRules rules;

  public PodInterception(RedirectRules rules) {
    this.rules = rules;
  }

  public RedirectRules rules() {
    return rules;
  }

  /** Installs (or re-installs, converging) the IPv4 redirect rules in {@code netns}. */
  public void install(Path netns) throws IOException {
    install(netns, false);
  }

  /**
   * Installs (or re-installs, converging) the redirect rules in the namespace at {@code netns}:
   * IPv4, and IPv6 too when {@code ipv6}. All or nothing: if the IPv6 rules fail, the IPv4 ones are
   * removed again.
   */
  public void install(Path netns, boolean ipv6) throws IOException {
    install(netns, Family.IPV4);
    if (ipv6) {
      try {
        install(netns, Family.IPV6);
      } catch (IOException | RuntimeException e) {
        try {
          remove(netns, Family.IPV4);
        } catch (IOException undo) {
          e.addSuppressed(undo);
        }
        throw e;
      }
    }
  }

  private void install(Path netns, Family family) throws IOException {
    NatTable before = read(netns, family);
    String script = rules.installScript(before.outputJump(), before.inboundJump());
    run(netns, script, List.of(family.restore, "-w", "--noflush"));
    NatTable after = read(netns, family);
    if (!after.complete()) {
      // The restore said yes but the rules are not all there: undo what is and report.
      remove(netns, family);
      throw new IOException(
          family + " redirect rules incomplete after install in " + netns + ": " + after);
    }
    log.debug("{} redirect rules installed in {}", family, netns);
  }

  /** Removes every nodemesh rule and chain of both families; a no-op when there are none. */
  public void remove(Path netns) throws IOException {
    IOException failure = null;
    for (Family f : Family.values()) {
      try {
        remove(netns, f);
      } catch (IOException e) {
        if (failure == null) {
          failure = e;
        } else {
          failure.addSuppressed(e);
        }
      }
    }
    if (failure != null) {
      throw failure;
    }
  }

  private void remove(Path netns, Family family) throws IOException {
    NatTable now = read(netns, family);
    if (now.clean()) {
      return;
    }
    String script =
        RedirectRules.removeScript(
            now.outputJump(), now.inboundJump(), now.outputChain(), now.inboundChain());
    run(netns, script, List.of(family.restore, "-w", "--noflush"));
  }

  public NatTable read(Path netns) throws IOException {
    return read(netns, Family.IPV4);
  }

  public NatTable read(Path netns, Family family) throws IOException {
    return NatTable.parse(natTable(netns, family));
  }

  /** The namespace's whole IPv4 nat table as iptables-save prints it (tests and diagnostics). */
  public static String natTable(Path netns) throws IOException {
    return natTable(netns, Family.IPV4);
  }

  /** The namespace's whole nat table of {@code family} as (ip6)tables-save prints it. */
  public static String natTable(Path netns, Family family) throws IOException {
    return run(netns, null, List.of(family.save, "-t", "nat"));
  }

  /** Runs {@code cmd} inside the namespace at {@code netns}; its output, or why it failed. */
  static String run(Path netns, @Nullable String stdin, List<String> cmd) throws IOException {
    List<String> full = new ArrayList<>();
    full.add("nsenter");
    full.add("--net=" + netns);
    full.addAll(cmd);
    Process p = new ProcessBuilder(full).redirectErrorStream(true).start();
    try (OutputStream in = p.getOutputStream()) {
      if (stdin != null) {
        in.write(stdin.getBytes(StandardCharsets.UTF_8));
      }
    }
    String out;
    try (InputStream o = p.getInputStream()) {
      out = new String(o.readAllBytes(), StandardCharsets.UTF_8);
    }
    try {
      if (!p.waitFor(TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        throw new IOException(String.join(" ", full) + " timed out");
      }
    } catch (InterruptedException e) {
      p.destroyForcibly();
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while running " + String.join(" ", full), e);
    }
    if (p.exitValue() != 0) {
      throw new IOException(
          String.join(" ", full) + " exited " + p.exitValue() + ": " + out.strip());
    }
    return out;
  }
}
