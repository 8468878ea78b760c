package dev.nodemesh.bpf.iptables;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.iptables.PodInterception.Family;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

@RootTest
class CallerAddressRoutingRootTest {
  private TestNetns ns;
  private final CallerAddressRouting routing = CallerAddressRouting.defaults();

  @BeforeEach
  void setUp() throws IOException {
    ns = TestNetns.create("car");
  }

  @AfterEach
  void tearDown() throws IOException {
    ns.close();
  }

  @Test
  void installIsCompleteAndIdempotentAndRemoveLeavesNothingOfOurs() throws IOException {
    String mangle = strip(ns.exec("iptables-save", "-t", "mangle"));
    String rules = ns.exec("ip", "-4", "rule", "show");
    String rules6 = ns.exec("ip", "-6", "rule", "show");
    routing.install(ns.path(), true);
    routing.install(ns.path(), true);
    assertTrue(routing.read(ns.path(), Family.IPV4).complete());
    assertTrue(routing.read(ns.path(), Family.IPV6).complete());
    String twice = ns.exec("iptables-save", "-t", "mangle");
    assertEquals(1, count(twice, "-A PREROUTING -j NODEMESH_PRERT"), twice);
    assertEquals(1, count(twice, "CONNMARK --restore-mark"), twice);
    assertEquals(1, count(ns.exec("ip", "-4", "rule", "show"), "lookup 1338"));
    assertEquals(1, count(ns.exec("ip", "-6", "rule", "show"), "lookup 1338"));

    routing.remove(ns.path());
    assertTrue(routing.read(ns.path(), Family.IPV4).clean());
    assertTrue(routing.read(ns.path(), Family.IPV6).clean());
    assertEquals(mangle, strip(ns.exec("iptables-save", "-t", "mangle")));
    assertEquals(rules, ns.exec("ip", "-4", "rule", "show"));
    assertEquals(rules6, ns.exec("ip", "-6", "rule", "show"));
    assertEquals(
        "", ns.exec("ip", "-4", "route", "show", "table", "all").contains("1338") ? "x" : "");
    routing.remove(ns.path()); // twice is fine
  }

  @Test
  void ipv4OnlyInstallLeavesIpv6Alone() throws IOException {
    routing.install(ns.path(), false);
    assertTrue(routing.read(ns.path(), Family.IPV4).complete());
    assertTrue(routing.read(ns.path(), Family.IPV6).clean());
    routing.remove(ns.path());
    assertTrue(routing.read(ns.path(), Family.IPV4).clean());
  }

  private static int count(String haystack, String needle) {
    return (int) haystack.lines().filter(l -> l.contains(needle)).count();
  }

  private static String strip(String save) {
    return save.lines()
        .filter(l -> !l.startsWith("#"))
        .map(l -> l.replaceAll("\\[\\d+:\\d+\\]", ""))
        .reduce("", (a, b) -> a + b + "\n");
  }
}
