package dev.nodemesh.bpf.iptables;

import dev.nodemesh.bpf.iptables.PodInterception.Family;
import dev.nodemesh.bpf.iptables.Transactions.Step;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.route.RouteRequests;
import dev.nodemesh.bpf.route.RtNetlink;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * What lets the node proxy connect to a pod's app from the caller's address and still get the app's
 * answers, in both interception modes. The proxy's socket inside the pod is bound to the caller's
 * IP with {@code IP_TRANSPARENT}; the app answers that IP, which the pod would route out of its
 * eth0 towards the real caller, who knows nothing of the connection. So, inside the pod's namespace
 * (as ztunnel's in-pod mode does, with our own names and numbers):
 *
 * <ul>
 *   <li>mangle {@code PREROUTING}: a TCP packet arriving over loopback with the proxy's mark (only
 *       the proxy's own delivery to the app arrives so: marks do not survive a veth) marks its
 *       connection ({@code CONNMARK --set-mark replyMark});
 *   <li>mangle {@code OUTPUT}: every packet of such a connection gets that mark back ({@code
 *       CONNMARK --restore-mark}), which makes the kernel route it again;
 *   <li>{@code ip rule fwmark replyMark lookup table} and {@code ip route local default dev lo
 *       table table}: a packet with that mark is delivered locally, to the proxy's socket, whatever
 *       its destination address;
 *   <li>{@code ip rule fwmark proxyMark oif lo lookup table}: the proxy's delivery socket itself
 *       (it carries the proxy mark and is bound to {@code lo}, {@code SO_BINDTOIFINDEX}) is routed
 *       through the same local route, so its packets to the app are looped back as arriving on
 *       {@code lo} in both families. IPv6 needs it: a socket bound to {@code lo} finds no IPv6
 *       route to the pod's own address (its local route names eth0, and a device-bound IPv6 lookup
 *       is strict), and an unbound one's connection arrives reported on eth0 from the caller's
 *       address, which eBPF mode's sk_lookup program cannot tell from a real client's and would
 *       capture again (a loop). IPv4 reached {@code lo} without the rule (the kernel assumes a
 *       device-bound destination on-link when no route matches); the rule makes it explicit.
 * </ul>
 *
 * <p>The chains go in with iptables-restore (one transaction per family, see {@link Transactions});
 * the rule and the route over rtnetlink ({@link RouteRequests}), which costs no process.
 *
 * <p>Connections the proxy opens from the pod to elsewhere (tunnels, passthrough) leave over eth0
 * and are never marked so; the app's own connections are not either. Installed at enrolment after
 * the redirect rules (or the eBPF registration), removed at un-enrolment; IPv6 gets the same with
 * ip6tables and {@code ip -6}. Limit: an app that sets its own socket mark on an accepted
 * connection has it replaced for that connection's packets.
 *
 * @param proxyMark SO_MARK of the proxy's sockets (0x539)
 * @param replyMark the mark of the proxy's delivery connections and their packets (0x53a)
 * @param table the routing table that delivers everything locally
 * @param priority the {@code ip rule} preference, ahead of the main table (32766)
 */
public record CallerAddressRouting(int proxyMark, int replyMark, int table, int priority) {
  public static final String PREROUTING_CHAIN = "NODEMESH_PRERT";
  public static final String OUTPUT_CHAIN = "NODEMESH_REPLY";
  static final String PREROUTING_JUMP = "-A PREROUTING -j " + PREROUTING_CHAIN;
  static final String OUTPUT_JUMP = "-A OUTPUT -j " + OUTPUT_CHAIN;

  /** The proxy mark 0x539, reply mark 0x53a, table 1338 (0x53a), rule preference 32750. */
  public static CallerAddressRouting defaults() {
    return forProxyMark(0x539);
  }

  /** The default reply mark, table and preference for a proxy whose sockets carry {@code mark}. */
  public static CallerAddressRouting forProxyMark(int mark) {
    return new CallerAddressRouting(mark, 0x53a, 0x53a, 32750);
  }

  /** What of it one namespace holds for one family. */
  public record State(
      boolean preroutingJump,
      boolean outputJump,
      boolean preroutingChain,
      boolean outputChain,
      boolean rule,
      boolean route,
      boolean deliveryRule) {
    public boolean complete() {
      return preroutingJump
          && outputJump
          && preroutingChain
          && outputChain
          && rule
          && route
          && deliveryRule;
    }

    public boolean clean() {
      return !preroutingJump
          && !outputJump
          && !preroutingChain
          && !outputChain
          && !rule
          && !route
          && !deliveryRule;
    }
  }

  /**
   * One mangle transaction that (re)creates both chains (declaring a chain flushes it, so a re-run
   * converges) and adds the jumps that are missing.
   */
  public String mangleInstallScript(boolean preroutingJumpPresent, boolean outputJumpPresent) {
    StringBuilder s = new StringBuilder("*mangle\n");
    s.append(':').append(PREROUTING_CHAIN).append(" - [0:0]\n");
    s.append(':').append(OUTPUT_CHAIN).append(" - [0:0]\n");
    chainRules(s);
    if (!preroutingJumpPresent) {
      s.append(PREROUTING_JUMP).append('\n');
    }
    if (!outputJumpPresent) {
      s.append(OUTPUT_JUMP).append('\n');
    }
    s.append("COMMIT\n");
    return s.toString();
  }

  /**
   * The mangle transaction for a namespace with none of it: {@code -N} fails the whole transaction
   * when a chain exists (see {@link RedirectRules#freshScript}); the caller then converges with
   * {@link #mangleInstallScript}.
   */
  public String mangleFreshScript() {
    StringBuilder s = new StringBuilder("*mangle\n");
    s.append("-N ").append(PREROUTING_CHAIN).append('\n');
    s.append("-N ").append(OUTPUT_CHAIN).append('\n');
    chainRules(s);
    s.append(PREROUTING_JUMP).append('\n');
    s.append(OUTPUT_JUMP).append('\n');
    s.append("COMMIT\n");
    return s.toString();
  }

  /**
   * The mangle transaction for a namespace that holds it already ({@link Prior#INSTALLED}): both
   * chains declared (created or emptied) and refilled, both jumps checked ({@code -C}), so a
   * missing jump fails it whole and the caller converges with {@link #mangleInstallScript} (see
   * {@link RedirectRules#reinstallScript}).
   */
  public String mangleReinstallScript() {
    StringBuilder s = new StringBuilder("*mangle\n");
    s.append(':').append(PREROUTING_CHAIN).append(" - [0:0]\n");
    s.append(':').append(OUTPUT_CHAIN).append(" - [0:0]\n");
    chainRules(s);
    s.append(PREROUTING_JUMP.replaceFirst("-A", "-C")).append('\n');
    s.append(OUTPUT_JUMP.replaceFirst("-A", "-C")).append('\n');
    s.append("COMMIT\n");
    return s.toString();
  }

  /** The mangle transaction removing exactly what {@link #mangleFreshScript} adds. */
  public String mangleRemoveAllScript() {
    return mangleRemoveScript(new State(true, true, true, true, false, false, false));
  }

  /** The mangle part of {@code save} (iptables-save output), as a script removing it; or "". */
  String mangleCleanup(String save) {
    State now = parse(Transactions.table(save, "mangle"), "", "");
    if (!now.preroutingJump()
        && !now.outputJump()
        && !now.preroutingChain()
        && !now.outputChain()) {
      return "";
    }
    return mangleRemoveScript(now);
  }

  private void chainRules(StringBuilder s) {
    s.append("-A ")
        .append(PREROUTING_CHAIN)
        .append(" -i lo -p tcp -m mark --mark ")
        .append(hex(proxyMark))
        .append(" -j CONNMARK --set-xmark ")
        .append(hex(replyMark))
        .append("/0xffffffff\n");
    s.append("-A ")
        .append(OUTPUT_CHAIN)
        .append(" -p tcp -m connmark --mark ")
        .append(hex(replyMark))
        .append(" -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff\n");
  }

  /** One mangle transaction removing what {@code now} says is there. */
  public static String mangleRemoveScript(State now) {
    StringBuilder s = new StringBuilder("*mangle\n");
    if (now.preroutingJump()) {
      s.append(PREROUTING_JUMP.replaceFirst("-A", "-D")).append('\n');
    }
    if (now.outputJump()) {
      s.append(OUTPUT_JUMP.replaceFirst("-A", "-D")).append('\n');
    }
    for (String chain : new String[] {PREROUTING_CHAIN, OUTPUT_CHAIN}) {
      if (chain.equals(PREROUTING_CHAIN) ? now.preroutingChain() : now.outputChain()) {
        s.append("-F ").append(chain).append('\n');
        s.append("-X ").append(chain).append('\n');
      }
    }
    s.append("COMMIT\n");
    return s.toString();
  }

  /**
   * The netlink requests that add the local route (replacing it) and both rules (an identical one
   * already there counts as added, so a re-run converges); or, for {@code !install}, delete all
   * three (each already gone counts as deleted).
   */
  public List<RouteRequests.Request> routeRequests(Family family, boolean install) {
    int af = family == Family.IPV6 ? RtNetlink.AF_INET6 : RtNetlink.AF_INET;
    String ip = "ip " + family.ip + " ";
    String route = "local default dev lo table " + table;
    if (install) {
      return List.of(
          new RouteRequests.Request(
              ip + "route replace " + route,
              seq -> RtNetlink.replaceLocalDefault(af, table, seq),
              Set.of()),
          new RouteRequests.Request(
              ip + "rule add " + ruleSelector(),
              seq -> RtNetlink.addRule(af, replyMark, table, priority, seq),
              Set.of(RouteRequests.EEXIST)),
          new RouteRequests.Request(
              ip + "rule add " + deliveryRuleSelector(),
              seq -> RtNetlink.addLoopbackRule(af, proxyMark, table, priority, seq),
              Set.of(RouteRequests.EEXIST)));
    }
    return List.of(
        new RouteRequests.Request(
            ip + "rule del " + ruleSelector(),
            seq -> RtNetlink.deleteRule(af, replyMark, table, priority, seq),
            Set.of(RouteRequests.ENOENT, RouteRequests.EAFNOSUPPORT)),
        new RouteRequests.Request(
            ip + "rule del " + deliveryRuleSelector(),
            seq -> RtNetlink.deleteLoopbackRule(af, proxyMark, table, priority, seq),
            Set.of(RouteRequests.ENOENT, RouteRequests.EAFNOSUPPORT)),
        new RouteRequests.Request(
            ip + "route del " + route,
            seq -> RtNetlink.deleteLocalDefault(af, table, seq),
            Set.of(RouteRequests.ESRCH, RouteRequests.ENOENT, RouteRequests.EAFNOSUPPORT)));
  }

  /** Adds the rule and the local route of {@code family} in the namespace at {@code netns}. */
  void installRoutes(Path netns, Family family) throws IOException {
    try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
      RouteRequests.run(ns, routeRequests(family, true));
    }
  }

  /** Deletes the rule and the local route of {@code family}; a no-op for what is not there. */
  void removeRoutes(Path netns, Family family) throws IOException {
    try (NetworkNamespace ns = NetworkNamespace.open(netns)) {
      RouteRequests.run(ns, routeRequests(family, false));
    }
  }

  private String ruleSelector() {
    return "fwmark " + hex(replyMark) + " lookup " + table + " pref " + priority;
  }

  private String deliveryRuleSelector() {
    return "fwmark " + hex(proxyMark) + " oif lo lookup " + table + " pref " + priority;
  }

  /**
   * Parses {@code iptables-save -t mangle}, {@code ip rule show} and {@code ip route show table
   * all} (asking for one table fails while it does not exist).
   */
  public State parse(String mangleSave, String ipRules, String tableRoutes) {
    List<String> lines = mangleSave.lines().map(String::strip).toList();
    String rule = "fwmark " + hex(replyMark) + " lookup " + table;
    String deliveryRule = "fwmark " + hex(proxyMark) + " oif lo lookup " + table;
    return new State(
        lines.contains(PREROUTING_JUMP),
        lines.contains(OUTPUT_JUMP),
        lines.stream().anyMatch(l -> l.startsWith(":" + PREROUTING_CHAIN + " ")),
        lines.stream().anyMatch(l -> l.startsWith(":" + OUTPUT_CHAIN + " ")),
        ipRules.lines().anyMatch(l -> l.startsWith(priority + ":") && l.contains(rule)),
        tableRoutes
            .lines()
            .anyMatch(l -> l.startsWith("local default") && l.contains(" table " + table + " ")),
        ipRules.lines().anyMatch(l -> l.startsWith(priority + ":") && l.contains(deliveryRule)));
  }

  /** What the namespace at {@code netns} holds of these rules for {@code family}. */
  public State read(Path netns, Family family) throws IOException {
    return parse(
        PodInterception.run(netns, null, List.of(family.save, "-t", "mangle")),
        PodInterception.run(netns, null, List.of("ip", family.ip, "rule", "show")),
        PodInterception.run(
            netns, null, List.of("ip", family.ip, "route", "show", "table", "all")));
  }

  /**
   * Installs (converging) in the namespace at {@code netns} for IPv4, and IPv6 too when {@code
   * ipv6}: per family one mangle transaction that expects none of it (the families concurrently),
   * read and converged only where that fails, and the rule and route over netlink meanwhile. On
   * failure whatever was added is removed again before the exception is thrown.
   */
  public void install(Path netns, boolean ipv6) throws IOException {
    install(netns, ipv6, Prior.NONE);
  }

  /**
   * As {@link #install(Path, boolean)}, the first mangle transaction of each family written for
   * {@code prior}. Returns how many processes it ran: one per family when {@code prior} was right.
   */
  public int install(Path netns, boolean ipv6, Prior prior) throws IOException {
    List<Step> steps = new ArrayList<>();
    List<Family> families = ipv6 ? List.of(Family.IPV4, Family.IPV6) : List.of(Family.IPV4);
    String fast = prior == Prior.NONE ? mangleFreshScript() : mangleReinstallScript();
    for (Family f : families) {
      steps.add(
          new Step(
              f,
              fast,
              save -> {
                State now = parse(Transactions.table(save, "mangle"), "", "");
                return mangleInstallScript(now.preroutingJump(), now.outputJump());
              }));
    }
    try {
      return Transactions.run(
          netns,
          steps,
          () -> {
            for (Family f : families) {
              installRoutes(netns, f);
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
  }

  /**
   * Removes everything of both families that is there, reading the mangle tables first (for a
   * namespace whose state is not known); a no-op when nothing is.
   */
  public void remove(Path netns) throws IOException {
    List<Step> steps = new ArrayList<>();
    for (Family f : Family.values()) {
      steps.add(new Step(f, null, this::mangleCleanup));
    }
    Transactions.run(
        netns,
        steps,
        () -> {
          for (Family f : Family.values()) {
            removeRoutes(netns, f);
          }
        });
  }

  /**
   * Removes what {@code install(netns, ipv6)} put there: per family installed, one mangle
   * transaction expecting exactly that (read and cleared as {@link #remove} does where it differs)
   * and its rules and route. A family not installed is not looked at.
   */
  public void removeInstalled(Path netns, boolean ipv6) throws IOException {
    List<Family> families = ipv6 ? List.of(Family.IPV4, Family.IPV6) : List.of(Family.IPV4);
    List<Step> steps = new ArrayList<>();
    for (Family f : families) {
      steps.add(new Step(f, mangleRemoveAllScript(), this::mangleCleanup));
    }
    Transactions.run(
        netns,
        steps,
        () -> {
          for (Family f : families) {
            removeRoutes(netns, f);
          }
        });
  }

  private static String hex(int v) {
    return "0x" + Integer.toHexString(v);
  }
}
