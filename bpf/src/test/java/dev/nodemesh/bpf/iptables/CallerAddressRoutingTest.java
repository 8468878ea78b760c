package dev.nodemesh.bpf.iptables;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.route.RouteRequests;
import dev.nodemesh.bpf.route.RtNetlink;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

class CallerAddressRoutingTest {
  private final CallerAddressRouting routing = CallerAddressRouting.defaults();

  @Test
  void theProxysLoopbackDeliveryMarksItsConnectionAndTheRepliesGetTheMarkBack() {
    String s = routing.mangleInstallScript(false, false);
    assertTrue(s.startsWith("*mangle\n:NODEMESH_PRERT - [0:0]\n:NODEMESH_REPLY - [0:0]\n"), s);
    assertTrue(
        s.contains(
            "-A NODEMESH_PRERT -i lo -p tcp -m mark --mark 0x539"
                + " -j CONNMARK --set-xmark 0x53a/0xffffffff\n"),
        s);
    assertTrue(
        s.contains(
            "-A NODEMESH_REPLY -p tcp -m connmark --mark 0x53a -j CONNMARK --restore-mark"
                + " --nfmask 0xffffffff --ctmask 0xffffffff\n"),
        s);
    assertTrue(s.indexOf("-A PREROUTING -j NODEMESH_PRERT") > s.indexOf("-A NODEMESH_REPLY"), s);
    assertTrue(s.contains("-A OUTPUT -j NODEMESH_REPLY\n"), s);
    assertTrue(s.endsWith("COMMIT\n"), s);
    String again = routing.mangleInstallScript(true, true);
    assertFalse(again.contains("-A PREROUTING") || again.contains("-A OUTPUT"), again);
  }

  @Test
  void theMarkedPacketsAreDeliveredLocallyThroughTheirOwnTable() {
    List<RouteRequests.Request> v4 = routing.routeRequests(PodInterception.Family.IPV4, true);
    assertEquals(
        List.of(
            "ip -4 route replace local default dev lo table 1338",
            "ip -4 rule add fwmark 0x53a lookup 1338 pref 32750",
            "ip -4 rule add fwmark 0x539 oif lo lookup 1338 pref 32750"),
        v4.stream().map(RouteRequests.Request::what).toList());
    assertArrayEquals(
        RtNetlink.replaceLocalDefault(RtNetlink.AF_INET, 1338, 1), v4.get(0).message().apply(1));
    assertArrayEquals(
        RtNetlink.addRule(RtNetlink.AF_INET, 0x53a, 1338, 32750, 2), v4.get(1).message().apply(2));
    // Adding a rule that is there already converges; replacing the route always succeeds.
    assertEquals(Set.of(RouteRequests.EEXIST), v4.get(1).tolerated());
    assertEquals(Set.of(), v4.get(0).tolerated());
    // The proxy's own delivery socket (its mark, bound to lo) goes through the same table.
    assertArrayEquals(
        RtNetlink.addLoopbackRule(RtNetlink.AF_INET, 0x539, 1338, 32750, 3),
        v4.get(2).message().apply(3));
    assertEquals(Set.of(RouteRequests.EEXIST), v4.get(2).tolerated());
    List<RouteRequests.Request> v6 = routing.routeRequests(PodInterception.Family.IPV6, true);
    assertArrayEquals(
        RtNetlink.replaceLocalDefault(RtNetlink.AF_INET6, 1338, 1), v6.get(0).message().apply(1));
    assertArrayEquals(
        RtNetlink.addRule(RtNetlink.AF_INET6, 0x53a, 1338, 32750, 2), v6.get(1).message().apply(2));
    assertArrayEquals(
        RtNetlink.addLoopbackRule(RtNetlink.AF_INET6, 0x539, 1338, 32750, 3),
        v6.get(2).message().apply(3));
  }

  @Test
  void aFreshMangleTransactionCreatesTheChainsSoItFailsWhereTheyExist() {
    String s = routing.mangleFreshScript();
    assertTrue(s.startsWith("*mangle\n-N NODEMESH_PRERT\n-N NODEMESH_REPLY\n"), s);
    assertEquals(1, s.lines().filter(l -> l.equals("-A PREROUTING -j NODEMESH_PRERT")).count(), s);
    assertEquals(1, s.lines().filter(l -> l.equals("-A OUTPUT -j NODEMESH_REPLY")).count(), s);
    // The same chain rules as the converging transaction.
    String converge = routing.mangleInstallScript(false, false);
    assertEquals(
        converge.lines().filter(l -> l.startsWith("-A NODEMESH_")).toList(),
        s.lines().filter(l -> l.startsWith("-A NODEMESH_")).toList());
    String remove = routing.mangleRemoveAllScript();
    assertEquals(
        "*mangle\n-D PREROUTING -j NODEMESH_PRERT\n-D OUTPUT -j NODEMESH_REPLY\n"
            + "-F NODEMESH_PRERT\n-X NODEMESH_PRERT\n-F NODEMESH_REPLY\n-X NODEMESH_REPLY\n"
            + "COMMIT\n",
        remove);
  }

  @Test
  void aReinstallMangleTransactionRewritesTheChainsAndOnlyChecksTheJumps() {
    String s = routing.mangleReinstallScript();
    assertTrue(s.startsWith("*mangle\n:NODEMESH_PRERT - [0:0]\n:NODEMESH_REPLY - [0:0]\n"), s);
    assertFalse(s.contains("-N "), s);
    assertFalse(s.contains("-A PREROUTING"), s);
    assertFalse(s.contains("-A OUTPUT"), s);
    assertEquals(1, s.lines().filter(l -> l.equals("-C PREROUTING -j NODEMESH_PRERT")).count(), s);
    assertEquals(1, s.lines().filter(l -> l.equals("-C OUTPUT -j NODEMESH_REPLY")).count(), s);
    assertEquals(
        routing.mangleFreshScript().lines().filter(l -> l.startsWith("-A NODEMESH_")).toList(),
        s.lines().filter(l -> l.startsWith("-A NODEMESH_")).toList());
    assertTrue(s.endsWith("COMMIT\n"), s);
  }

  @Test
  void parseFindsOnlyOurChainsRuleAndRoute() {
    String mangle =
        """
        *mangle
        :PREROUTING ACCEPT [0:0]
        :NODEMESH_PRERT - [0:0]
        :NODEMESH_REPLY - [0:0]
        -A PREROUTING -j NODEMESH_PRERT
        -A OUTPUT -j NODEMESH_REPLY
        COMMIT
        """;
    String rules =
        "0:\tfrom all lookup local\n"
            + "32750:\tfrom all fwmark 0x53a lookup 1338\n"
            + "32750:\tfrom all fwmark 0x539 oif lo lookup 1338\n"
            + "32766:\tfrom all lookup main\n";
    String routes =
        "local default dev lo table 1338 scope host \n"
            + "local 10.0.0.2 dev eth0 table local proto kernel scope host src 10.0.0.2 \n";
    CallerAddressRouting.State all = routing.parse(mangle, rules, routes);
    assertTrue(all.complete(), all.toString());
    // Without the delivery socket's rule it is not complete, and that rule alone is not clean.
    CallerAddressRouting.State noDelivery =
        routing.parse(
            mangle, rules.replace("fwmark 0x539 oif lo", "fwmark 0x539 oif eth0"), routes);
    assertFalse(noDelivery.complete() || noDelivery.deliveryRule(), noDelivery.toString());
    CallerAddressRouting.State onlyDelivery =
        routing.parse(
            "*mangle\nCOMMIT\n", "32750:\tfrom all fwmark 0x539 oif lo lookup 1338\n", "");
    assertFalse(onlyDelivery.clean(), onlyDelivery.toString());
    CallerAddressRouting.State none =
        routing.parse(
            "*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n",
            "32766:\tfrom all lookup main\n32760:\tfrom all fwmark 0x53a lookup 99\n",
            "local default dev lo table 99 scope host \n");
    assertTrue(none.clean(), none.toString());
  }

  @Test
  void removeTakesOutOnlyWhatIsThere() {
    CallerAddressRouting.State jumpsOnly =
        new CallerAddressRouting.State(true, false, false, false, true, false, true);
    assertEquals(
        "*mangle\n-D PREROUTING -j NODEMESH_PRERT\nCOMMIT\n",
        CallerAddressRouting.mangleRemoveScript(jumpsOnly));
    CallerAddressRouting.State all =
        new CallerAddressRouting.State(true, true, true, true, true, true, true);
    String s = CallerAddressRouting.mangleRemoveScript(all);
    assertTrue(s.indexOf("-D OUTPUT -j NODEMESH_REPLY") < s.indexOf("-X NODEMESH_REPLY"), s);
    assertTrue(s.contains("-F NODEMESH_PRERT\n-X NODEMESH_PRERT\n"), s);
    // From a whole iptables-save: only the mangle table's chains count, and none means no script.
    String save =
        "*nat\n:NODEMESH_OUTPUT - [0:0]\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n"
            + ":NODEMESH_REPLY - [0:0]\n-A OUTPUT -j NODEMESH_REPLY\nCOMMIT\n";
    assertEquals(
        "*mangle\n-D OUTPUT -j NODEMESH_REPLY\n-F NODEMESH_REPLY\n-X NODEMESH_REPLY\nCOMMIT\n",
        routing.mangleCleanup(save));
    assertEquals("", routing.mangleCleanup("*nat\n:NODEMESH_OUTPUT - [0:0]\nCOMMIT\n"));
    // Deleting what is gone already converges too.
    List<RouteRequests.Request> del = routing.routeRequests(PodInterception.Family.IPV4, false);
    assertEquals(
        List.of(
            "ip -4 rule del fwmark 0x53a lookup 1338 pref 32750",
            "ip -4 rule del fwmark 0x539 oif lo lookup 1338 pref 32750",
            "ip -4 route del local default dev lo table 1338"),
        del.stream().map(RouteRequests.Request::what).toList());
    assertTrue(del.get(0).tolerated().contains(RouteRequests.ENOENT));
    assertTrue(del.get(1).tolerated().contains(RouteRequests.ENOENT));
    assertTrue(del.get(2).tolerated().contains(RouteRequests.ESRCH));
    assertArrayEquals(
        RtNetlink.deleteRule(RtNetlink.AF_INET, 0x53a, 1338, 32750, 1),
        del.get(0).message().apply(1));
  }
}
