package dev.nodemesh.bpf.iptables;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

@RootTest
class PodInterceptionRootTest {
  private TestNetns ns;
  private final PodInterception interception = new PodInterception(RedirectRules.defaults());

  @BeforeEach
  void setUp() throws IOException {
    ns = TestNetns.create("ipt");
  }

  @AfterEach
  void tearDown() throws IOException {
    ns.close();
  }

  @Test
  void installIsCompleteAndIdempotentAndRemoveRestoresTheNamespace() throws IOException {
    String pristine = PodInterception.natTable(ns.path());
    interception.install(ns.path());
    assertTrue(interception.read(ns.path()).complete());
    interception.install(ns.path());
    String twice = PodInterception.natTable(ns.path());
    assertEquals(1, count(twice, "-A OUTPUT -p tcp -j NODEMESH_OUTPUT"), twice);
    assertEquals(1, count(twice, "REDIRECT --to-ports 15001"), twice);

    interception.remove(ns.path());
    assertTrue(interception.read(ns.path()).clean());
    assertEquals(strip(pristine), strip(PodInterception.natTable(ns.path())));
    interception.remove(ns.path()); // removing twice is fine
  }

  @Test
  void dualStackInstallsTheSameRulesWithIp6tablesAndRemoveClearsBoth() throws IOException {
    String pristine6 = PodInterception.natTable(ns.path(), PodInterception.Family.IPV6);
    interception.install(ns.path());
    // IPv4 only by default: nothing in the IPv6 nat table.
    assertTrue(interception.read(ns.path(), PodInterception.Family.IPV6).clean());

    interception.install(ns.path(), true);
    interception.install(ns.path(), true);
    assertTrue(interception.read(ns.path()).complete());
    assertTrue(interception.read(ns.path(), PodInterception.Family.IPV6).complete());
    String v6 = PodInterception.natTable(ns.path(), PodInterception.Family.IPV6);
    assertEquals(1, count(v6, "-A OUTPUT -p tcp -j NODEMESH_OUTPUT"), v6);
    assertEquals(1, count(v6, "REDIRECT --to-ports 15001"), v6);
    assertEquals(1, count(v6, "REDIRECT --to-ports 15006"), v6);

    interception.remove(ns.path());
    assertTrue(interception.read(ns.path()).clean());
    assertTrue(interception.read(ns.path(), PodInterception.Family.IPV6).clean());
    assertEquals(
        strip(pristine6), strip(PodInterception.natTable(ns.path(), PodInterception.Family.IPV6)));
  }

  @Test
  void withTheRoutingOneInstallPutsInBothTablesAndTheRouteAndRemoveInstalledTakesAllOut()
      throws IOException {
    PodInterception both =
        new PodInterception(RedirectRules.defaults(), CallerAddressRouting.defaults());
    CallerAddressRouting routing = CallerAddressRouting.defaults();
    String pristine = tables();
    String rules = ns.exec("ip", "-4", "rule", "show");
    both.install(ns.path(), false); // the fresh transaction
    String first = strip(ns.exec("iptables-save"));
    assertTrue(both.read(ns.path()).complete(), first);
    assertTrue(routing.read(ns.path(), PodInterception.Family.IPV4).complete(), first);
    both.install(ns.path(), false); // chains exist: read and converged, nothing doubled
    assertEquals(first, strip(ns.exec("iptables-save")));
    assertEquals(2, count(ns.exec("ip", "-4", "rule", "show"), "lookup 1338"));
    assertEquals(1, count(ns.exec("ip", "-4", "rule", "show"), "fwmark 0x539 oif lo lookup 1338"));

    both.removeInstalled(ns.path(), false);
    assertEquals(pristine, tables());
    assertTrue(routing.read(ns.path(), PodInterception.Family.IPV4).clean());
    assertEquals(rules, ns.exec("ip", "-4", "rule", "show"));
    both.removeInstalled(ns.path(), false); // nothing there: read, nothing to do
    both.remove(ns.path());
  }

  @Test
  void dualStackWithTheRoutingPutsItInBothFamiliesAndRemoveInstalledTakesItAllOut()
      throws IOException {
    PodInterception both =
        new PodInterception(RedirectRules.defaults(), CallerAddressRouting.defaults());
    CallerAddressRouting routing = CallerAddressRouting.defaults();
    String pristine = tables();
    String pristine6 = tables6();
    String rules6 = ns.exec("ip", "-6", "rule", "show");
    both.install(ns.path(), true);
    assertTrue(routing.read(ns.path(), PodInterception.Family.IPV4).complete());
    assertTrue(routing.read(ns.path(), PodInterception.Family.IPV6).complete());
    assertTrue(both.read(ns.path(), PodInterception.Family.IPV6).complete());
    String first6 = tables6();
    both.install(ns.path(), true); // converged, nothing doubled
    assertEquals(first6, tables6());
    assertEquals(2, count(ns.exec("ip", "-6", "rule", "show"), "lookup 1338"));

    both.removeInstalled(ns.path(), true);
    assertEquals(pristine, tables());
    assertEquals(pristine6, tables6());
    assertTrue(routing.read(ns.path(), PodInterception.Family.IPV6).clean());
    assertEquals(rules6, ns.exec("ip", "-6", "rule", "show"));
  }

  @Test
  void rulesChangedByHandAreConvergedOnReinstallAndClearedOnRemove() throws IOException {
    PodInterception both =
        new PodInterception(RedirectRules.defaults(), CallerAddressRouting.defaults());
    String pristine = tables();
    both.install(ns.path(), true);
    String exact = strip(ns.exec("iptables-save"));
    String exact6 = strip(ns.exec("ip6tables-save"));
    ns.exec("iptables", "-t", "nat", "-F", "NODEMESH_OUTPUT");
    ns.exec("iptables", "-t", "nat", "-A", "NODEMESH_OUTPUT", "-p", "tcp", "-j", "RETURN");
    ns.exec("iptables", "-t", "nat", "-D", "PREROUTING", "-p", "tcp", "-j", "NODEMESH_INBOUND");
    ns.exec("iptables", "-t", "mangle", "-D", "OUTPUT", "-j", "NODEMESH_REPLY");
    ns.exec("ip6tables", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-j", "NODEMESH_OUTPUT");
    both.install(ns.path(), true);
    assertEquals(exact, strip(ns.exec("iptables-save")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save")));

    // A removal expecting exactly what install made finds a jump gone: read and cleared instead.
    ns.exec("iptables", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-j", "NODEMESH_OUTPUT");
    ns.exec("ip6tables", "-t", "nat", "-A", "NODEMESH_INBOUND", "-j", "RETURN");
    both.removeInstalled(ns.path(), true);
    assertEquals(pristine, tables());
    assertTrue(both.read(ns.path(), PodInterception.Family.IPV6).clean());
  }

  /**
   * A restarted proxy re-enrolling its pods expects its rules in place ({@link Prior#INSTALLED}):
   * one restore per family rewrites our chains, whatever was done to their contents meanwhile, and
   * checks the jumps; only a family with a jump gone (or nothing of ours) is read and converged.
   * The counts are the processes each install ran.
   */
  @Test
  void aReinstallExpectingOurRulesIsOneRestorePerFamilyAndReadsOnlyWhereAJumpIsGone()
      throws IOException {
    PodInterception both =
        new PodInterception(RedirectRules.defaults(), CallerAddressRouting.defaults());
    // Nothing there: each family's restore fails whole, then a save and a converging restore.
    assertEquals(6, both.install(ns.path(), true, Prior.INSTALLED));
    String exact = strip(ns.exec("iptables-save"));
    String exact6 = strip(ns.exec("ip6tables-save"));
    assertEquals(exact, strip(freshlyInstalled()), "as a fresh install makes them");
    assertEquals(2, both.install(ns.path(), true, Prior.INSTALLED));
    assertEquals(exact, strip(ns.exec("iptables-save")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save")));

    // Chains emptied or given stray rules: still one restore per family, exact again.
    ns.exec("iptables", "-t", "nat", "-F", "NODEMESH_OUTPUT");
    ns.exec("iptables", "-t", "nat", "-A", "NODEMESH_OUTPUT", "-p", "tcp", "-j", "RETURN");
    ns.exec("iptables", "-t", "mangle", "-F", "NODEMESH_PRERT");
    ns.exec("ip6tables", "-t", "nat", "-A", "NODEMESH_INBOUND", "-j", "RETURN");
    assertEquals(2, both.install(ns.path(), true, Prior.INSTALLED));
    assertEquals(exact, strip(ns.exec("iptables-save")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save")));

    // A jump gone in IPv4 only: that family is read and converged, IPv6 stays one restore.
    ns.exec("iptables", "-t", "nat", "-D", "PREROUTING", "-p", "tcp", "-j", "NODEMESH_INBOUND");
    ns.exec("iptables", "-t", "mangle", "-D", "OUTPUT", "-j", "NODEMESH_REPLY");
    assertEquals(4, both.install(ns.path(), true, Prior.INSTALLED));
    assertEquals(exact, strip(ns.exec("iptables-save")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save")));
    String rules = ns.exec("ip", "-4", "rule", "show");
    assertEquals(2, count(rules, "lookup 1338"), rules);

    // And a new pod's guess: nothing of ours, one restore per family.
    both.removeInstalled(ns.path(), true);
    assertEquals(2, both.install(ns.path(), true, Prior.NONE));
    assertEquals(exact, strip(ns.exec("iptables-save")));
  }

  /** The IPv4 tables of a second namespace after a fresh dual-stack install (an ADD's). */
  private static String freshlyInstalled() throws IOException {
    try (TestNetns other = TestNetns.create("ipt2")) {
      new PodInterception(RedirectRules.defaults(), CallerAddressRouting.defaults())
          .install(other.path(), true, Prior.NONE);
      return other.exec("iptables-save");
    }
  }

  @Test
  void aFailedInstallLeavesNothingBehind() throws IOException {
    PodInterception broken = new PodInterception(new RedirectRules(15001, 70000, 15008, 0x539));
    IOException e = assertThrows(IOException.class, () -> broken.install(ns.path()));
    assertTrue(e.getMessage().contains("iptables-restore"), e.getMessage());
    assertTrue(interception.read(ns.path()).clean(), PodInterception.natTable(ns.path()));
  }

  @Test
  void aMissingNamespaceIsAClearError() {
    IOException e =
        assertThrows(
            IOException.class,
            () -> interception.install(java.nio.file.Path.of("/var/run/netns/does-not-exist-nm")));
    assertTrue(e.getMessage().contains("nsenter"), e.getMessage());
  }

  /** The IPv6 nat and mangle tables, without comments and counters. */
  private String tables6() throws IOException {
    return strip(ns.exec("ip6tables-save", "-t", "nat"))
        + strip(ns.exec("ip6tables-save", "-t", "mangle"));
  }

  /** The IPv4 nat and mangle tables, without comments and counters. */
  private String tables() throws IOException {
    return strip(ns.exec("iptables-save", "-t", "nat"))
        + strip(ns.exec("iptables-save", "-t", "mangle"));
  }

  private static int count(String haystack, String needle) {
    return (int) haystack.lines().filter(l -> l.contains(needle)).count();
  }

  /** iptables-save prints comments with timestamps and packet counters; compare the rules. */
  private static String strip(String save) {
    return save.lines()
        .filter(l -> !l.startsWith("#"))
        .map(l -> l.replaceAll("\\[\\d+:\\d+\\]", ""))
        .reduce("", (a, b) -> a + b + "\n");
  }
}
