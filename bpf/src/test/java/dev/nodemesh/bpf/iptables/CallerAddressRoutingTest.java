package dev.nodemesh.bpf.iptables;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
    assertEquals(
        "route replace local 0.0.0.0/0 dev lo table 1338\n"
            + "rule add fwmark 0x53a lookup 1338 pref 32750\n",
        routing.routeInstallBatch(PodInterception.Family.IPV4, false));
    assertEquals(
        "route replace local ::/0 dev lo table 1338\n",
        routing.routeInstallBatch(PodInterception.Family.IPV6, true));
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
            + "32766:\tfrom all lookup main\n";
    String routes =
        "local default dev lo table 1338 scope host \n"
            + "local 10.0.0.2 dev eth0 table local proto kernel scope host src 10.0.0.2 \n";
    CallerAddressRouting.State all = routing.parse(mangle, rules, routes);
    assertTrue(all.complete(), all.toString());
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
        new CallerAddressRouting.State(true, false, false, false, true, false);
    assertEquals(
        "*mangle\n-D PREROUTING -j NODEMESH_PRERT\nCOMMIT\n",
        CallerAddressRouting.mangleRemoveScript(jumpsOnly));
    assertEquals(
        "rule del fwmark 0x53a lookup 1338 pref 32750\n", routing.routeRemoveBatch(jumpsOnly));
    CallerAddressRouting.State all =
        new CallerAddressRouting.State(true, true, true, true, true, true);
    String s = CallerAddressRouting.mangleRemoveScript(all);
    assertTrue(s.indexOf("-D OUTPUT -j NODEMESH_REPLY") < s.indexOf("-X NODEMESH_REPLY"), s);
    assertTrue(s.contains("-F NODEMESH_PRERT\n-X NODEMESH_PRERT\n"), s);
    assertTrue(routing.routeRemoveBatch(all).endsWith("route flush table 1338\n"));
  }
}
