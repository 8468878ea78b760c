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
 * Installs and removes {@link RedirectRules} inside a pod's network namespace with
 * iptables-restore, one transaction each way, so a failure leaves the namespace as it was. Commands
 * run through {@code nsenter --net=<path>} because the pod's namespace is named by path.
 *
 * <p>Limits: IPv4 only for now (ip6tables is the same with a different binary); every call forks a
 * process, which is fine for pod add/delete but not for anything per connection.
 */
public final class PodInterception {
  private static final Logger log = LoggerFactory.getLogger(PodInterception.class);
  private static final long TIMEOUT_SECONDS = 20;

  private final RedirectRules rules;

  public PodInterception(RedirectRules rules) {
    this.rules = rules;
  }

  public RedirectRules rules() {
    return rules;
  }

  /** Installs (or re-installs, converging) the redirect rules in the namespace at {@code netns}. */
  public void install(Path netns) throws IOException {
    NatTable before = read(netns);
    String script = rules.installScript(before.outputJump(), before.inboundJump());
    run(netns, script, List.of("iptables-restore", "-w", "--noflush"));
    NatTable after = read(netns);
    if (!after.complete()) {
      // iptables-restore said yes but the rules are not all there: undo what is and report.
      remove(netns);
      throw new IOException("redirect rules incomplete after install in " + netns + ": " + after);
    }
    log.debug("redirect rules installed in {}", netns);
  }

  /** Removes every nodemesh rule and chain from the namespace; a no-op when there are none. */
  public void remove(Path netns) throws IOException {
    NatTable now = read(netns);
    if (now.clean()) {
      return;
    }
    String script =
        RedirectRules.removeScript(
            now.outputJump(), now.inboundJump(), now.outputChain(), now.inboundChain());
    run(netns, script, List.of("iptables-restore", "-w", "--noflush"));
  }

  public NatTable read(Path netns) throws IOException {
    return NatTable.parse(natTable(netns));
  }

  /** The namespace's whole nat table as iptables-save prints it (for tests and diagnostics). */
  public static String natTable(Path netns) throws IOException {
    return run(netns, null, List.of("iptables-save", "-t", "nat"));
  }

  private static String run(Path netns, @Nullable String stdin, List<String> cmd)
      throws IOException {
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
