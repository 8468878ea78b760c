package dev.nodemesh.bpf.iptables;

import dev.nodemesh.bpf.iptables.Transactions.Step;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Installs and removes {@link RedirectRules} inside a pod's network namespace with iptables-restore
 * (and, for a pod with an IPv6 address, the same rules with ip6tables-restore), and with them, when
 * given one, the {@link CallerAddressRouting} of the same families: one iptables-restore per family
 * each way, its nat and mangle parts each one atomic transaction, so a failure leaves a table as it
 * was. Commands run through {@code nsenter --net=<path>} because the pod's namespace is named by
 * path.
 *
 * <p>A pod start waits for this, so the common cases cost one spawn per family and no look at the
 * tables ({@link Transactions}): an install first assumes none of our chains exist (true for every
 * new pod) and a remove of what {@link #install} put there assumes exactly that is there; when the
 * namespace turns out otherwise (a retried ADD, a restarted proxy re-enrolling its pods, rules
 * changed by hand) the transaction fails whole and the table is read and converged instead: chains
 * declared again (which empties them) and refilled, missing jumps added, none doubled. A caller
 * that knows better says so ({@link Prior}): a restarted proxy re-enrolling its pods expects our
 * rules, and its one restore per family rewrites the chains and checks the jumps. The families run
 * as concurrent processes, the routing's rule and route go over netlink meanwhile.
 *
 * <p>Without IPv6 rules a pod's native IPv6 traffic is not captured; {@link #remove(Path)} clears
 * both families whatever was installed. Limits: every call forks a process per family, which is
 * fine for pod add/delete but not for anything per connection.
 */
public final class PodInterception {
  private static final Logger log = LoggerFactory.getLogger(PodInterception.class);

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
  private final @Nullable CallerAddressRouting routing;

  /** The redirect rules alone. */
  public PodInterception(RedirectRules rules) {
    this(rules, null);
  }

  /**
   * The redirect rules and, in the same transaction per family, {@code routing}, so that iptables
   * mode enrols a pod with one iptables-restore per family.
   */
  public PodInterception(RedirectRules rules, @Nullable CallerAddressRouting routing) {
    this.rules = rules;
    this.routing = routing;
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
   * IPv4, and IPv6 too when {@code ipv6}; and the routing, if this has one. All or nothing: if any
   * part fails, everything of ours is removed again from both families. Expects a namespace with
   * none of our rules ({@link Prior#NONE}).
   */
  public void install(Path netns, boolean ipv6) throws IOException {
    install(netns, ipv6, Prior.NONE);
  }

  /**
   * As {@link #install(Path, boolean)}, the first transaction of each family written for {@code
   * prior}; where the namespace holds something else, it is read and converged all the same.
   * Returns how many processes it ran: one per family when {@code prior} was right.
   */
  public int install(Path netns, boolean ipv6, Prior prior) throws IOException {
    String fast = fastScript(prior);
    List<Step> steps = new ArrayList<>();
    steps.add(new Step(Family.IPV4, fast, save -> convergeScript(save, routing)));
    if (ipv6) {
      steps.add(new Step(Family.IPV6, fast, save -> convergeScript(save, routing)));
    }
    int spawned;
    try {
      spawned =
          Transactions.run(
              netns,
              steps,
              () -> {
                if (routing != null) {
                  routing.installRoutes(netns, Family.IPV4);
                  if (ipv6) {
                    routing.installRoutes(netns, Family.IPV6);
                  }
                }
              });
    } catch (IOException | RuntimeException e) {
      try {
        remove(netns);
      } catch (IOException undo) {
        e.addSuppressed(undo);
      }
      throw e;
    }
    log.debug("redirect rules installed in {} (IPv6: {}, {} processes)", netns, ipv6, spawned);
    return spawned;
  }

  /** The one-restore transaction for a namespace in state {@code prior}, nat and mangle. */
  private String fastScript(Prior prior) {
    return switch (prior) {
      case NONE ->
          routing == null ? rules.freshScript() : rules.freshScript() + routing.mangleFreshScript();
      case INSTALLED ->
          routing == null
              ? rules.reinstallScript()
              : rules.reinstallScript() + routing.mangleReinstallScript();
    };
  }

  private String convergeScript(String save, @Nullable CallerAddressRouting routing) {
    NatTable nat = NatTable.parse(Transactions.table(save, "nat"));
    String script = rules.installScript(nat.outputJump(), nat.inboundJump());
    if (routing != null) {
      CallerAddressRouting.State mangle = routing.parse(Transactions.table(save, "mangle"), "", "");
      script += routing.mangleInstallScript(mangle.preroutingJump(), mangle.outputJump());
    }
    return script;
  }

  /**
   * Removes every nodemesh rule and chain (and the routing, if this has one) of both families,
   * reading each family's tables first: for a namespace whose state is unknown (not installed by
   * this process, or a failed install). A no-op when there are none.
   */
  public void remove(Path netns) throws IOException {
    clear(netns, List.of(slowRemoval(Family.IPV4), slowRemoval(Family.IPV6)), true);
  }

  /**
   * Removes what {@link #install(Path, boolean)} put in place in this process, with {@code ipv6} as
   * given then: one transaction per family that expects exactly that; a family whose tables differ
   * (changed meanwhile) is read and cleared as {@link #remove(Path)} does. Only the families
   * installed are looked at.
   */
  public void removeInstalled(Path netns, boolean ipv6) throws IOException {
    List<Step> steps = new ArrayList<>();
    String all = RedirectRules.removeScript(true, true, true, true);
    steps.add(
        new Step(
            Family.IPV4,
            routing == null ? all : all + routing.mangleRemoveAllScript(),
            save -> removeScript(save, routing)));
    if (ipv6) {
      steps.add(
          new Step(
              Family.IPV6,
              routing == null ? all : all + routing.mangleRemoveAllScript(),
              save -> removeScript(save, routing)));
    }
    clear(netns, steps, ipv6);
  }

  private Step slowRemoval(Family family) {
    return new Step(family, null, save -> removeScript(save, routing));
  }

  private void clear(Path netns, List<Step> steps, boolean ipv6Routes) throws IOException {
    Transactions.run(
        netns,
        steps,
        () -> {
          if (routing != null) {
            routing.removeRoutes(netns, Family.IPV4);
            if (ipv6Routes) {
              routing.removeRoutes(netns, Family.IPV6);
            }
          }
        });
  }

  /** What of ours {@code save} shows, as one script that removes it; empty when there is none. */
  private static String removeScript(String save, @Nullable CallerAddressRouting routing) {
    StringBuilder script = new StringBuilder();
    NatTable now = NatTable.parse(Transactions.table(save, "nat"));
    if (!now.clean()) {
      script.append(
          RedirectRules.removeScript(
              now.outputJump(), now.inboundJump(), now.outputChain(), now.inboundChain()));
    }
    if (routing != null) {
      script.append(routing.mangleCleanup(save));
    }
    return script.toString();
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
    return Transactions.run(netns, stdin, cmd);
  }
}
