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
    for (String ip : new String[] {"-4", "-6"}) {
      String shown = ns.exec("ip", ip, "rule", "show");
      // The replies' rule and the proxy's delivery socket's rule, once each.
      assertEquals(2, count(shown, "lookup 1338"), shown);
      assertEquals(1, count(shown, "fwmark 0x53a lookup 1338"), shown);
      assertEquals(1, count(shown, "fwmark 0x539 oif lo lookup 1338"), shown);
    }

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

  /** eBPF mode's share of a restarted proxy's re-enrolment ({@link Prior#INSTALLED}). */
  @Test
  void aReinstallExpectingItIsOneRestorePerFamilyAndConvergesWhereAJumpIsGone() throws IOException {
    assertEquals(2, routing.install(ns.path(), true, Prior.NONE));
    String exact = strip(ns.exec("iptables-save", "-t", "mangle"));
    String exact6 = strip(ns.exec("ip6tables-save", "-t", "mangle"));
    ns.exec("iptables", "-t", "mangle", "-F", "NODEMESH_REPLY");
    ns.exec("ip6tables", "-t", "mangle", "-A", "NODEMESH_PRERT", "-j", "RETURN");
    assertEquals(2, routing.install(ns.path(), true, Prior.INSTALLED));
    assertEquals(exact, strip(ns.exec("iptables-save", "-t", "mangle")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save", "-t", "mangle")));
    ns.exec("ip6tables", "-t", "mangle", "-D", "PREROUTING", "-j", "NODEMESH_PRERT");
    assertEquals(4, routing.install(ns.path(), true, Prior.INSTALLED));
    assertEquals(exact, strip(ns.exec("iptables-save", "-t", "mangle")));
    assertEquals(exact6, strip(ns.exec("ip6tables-save", "-t", "mangle")));
    assertTrue(routing.read(ns.path(), Family.IPV6).complete());
    routing.remove(ns.path());
    assertTrue(routing.read(ns.path(), Family.IPV4).clean());
  }

  @Test
  void ipv4OnlyInstallLeavesIpv6Alone() throws IOException {
    routing.install(ns.path(), false);
    assertTrue(routing.read(ns.path(), Family.IPV4).complete());
    assertTrue(routing.read(ns.path(), Family.IPV6).clean());
    routing.remove(ns.path());
    assertTrue(routing.read(ns.path(), Family.IPV4).clean());
  }

  /**
   * The kernel behaviour the delivery rule is for, over IPv6: a socket made as the proxy makes its
   * delivery socket (the proxy mark, bound to lo, IPV6_TRANSPARENT, bound to a caller's address
   * that is not local) connecting to the namespace's own address on another interface. Without the
   * routing there is no route for it (ENETUNREACH); with it the connection is made, the listener
   * sees the caller's address and the reply comes back to the socket.
   */
  @Test
  void aLoopbackBoundIpv6DeliveryFromACallersAddressConnectsOnlyWithTheRouting()
      throws IOException {
    // An interface other than lo for the namespace's own address (no dummy module here: a veth
    // pair with both ends inside).
    ns.exec("ip", "link", "add", "nm0", "type", "veth", "peer", "name", "nm1");
    ns.exec("ip", "link", "set", "nm0", "up");
    ns.exec("ip", "link", "set", "nm1", "up");
    ns.exec("ip", "-6", "addr", "add", "fd00:1::1/64", "dev", "nm0", "nodad");
    // A route towards the caller, as a pod has one (its default route): the app's SYN-ACK is
    // routed once before the mangle OUTPUT chain marks it and it is routed again, locally.
    ns.exec("ip", "-6", "route", "add", "fd00:2::/64", "dev", "nm0");
    String script =
        """
        import socket
        srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        srv.bind(('fd00:1::1', 0))
        srv.listen(1)
        srv.settimeout(5)
        c = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        c.setsockopt(socket.SOL_SOCKET, 36, 0x539)  # SO_MARK: the proxy mark
        c.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'lo')
        c.setsockopt(41, 75, 1)  # SOL_IPV6, IPV6_TRANSPARENT
        c.bind(('fd00:2::7', 0))
        c.settimeout(5)
        try:
            c.connect(('fd00:1::1', srv.getsockname()[1]))
        except OSError as e:
            print('errno', e.errno)
            raise SystemExit
        a, peer = srv.accept()
        a.sendall(b'r')
        print('peer', peer[0], c.recv(1).decode())
        """;
    assertEquals("errno 101", ns.exec("python3", "-c", script).strip()); // ENETUNREACH
    routing.install(ns.path(), true);
    assertEquals("peer fd00:2::7 r", ns.exec("python3", "-c", script).strip());
    routing.remove(ns.path());
    assertEquals("errno 101", ns.exec("python3", "-c", script).strip());
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
