package dev.nodemesh.proxy.testing;

import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.proxy.accesslog.AccessLogSettings;
import dev.nodemesh.proxy.authz.Authorizer;
import dev.nodemesh.proxy.authz.Decision;
import dev.nodemesh.proxy.authz.PolicyAuthorizer;
import dev.nodemesh.proxy.identity.IdentityProvider;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import dev.nodemesh.proxy.tunnel.TestIdentities;
import dev.nodemesh.proxy.tunnel.TunnelSettings;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Two nodes on this machine, each a {@link TestNode} (its own namespace, bridge, pods and node
 * proxy in this JVM), joined by a veth "underlay" between the two node namespaces with routes for
 * each other's pod subnet: node-1 pods 10.214.1.0/24, node-2 pods 10.214.2.0/24, underlay
 * 10.213.0.1/30 - 10.213.0.2/30. IPv6 likewise for pods given an IPv6 address ({@link
 * TestNode#addIpv6}): node-1 fd00:214:1::/64, node-2 fd00:214:2::/64, underlay fd00:213::1 -
 * fd00:213::2. Nothing is created in the root namespace.
 */
public final class TwoNodeCluster implements AutoCloseable {
  public static final String SUBNET_1 = "10.214.1.";
  public static final String SUBNET_2 = "10.214.2.";

  public final TestNode node1;
  public final TestNode node2;
  private final String underlay1;

  private TwoNodeCluster(TestNode node1, TestNode node2, String underlay1) {
    this.node1 = node1;
    this.node2 = node2;
    this.underlay1 = underlay1;
  }

  public static TwoNodeCluster create(Path dir) throws IOException {
    TestNode n1 = TestNode.createRouted(dir.resolve("node-1"), "node-1", SUBNET_1, "1");
    TestNode n2 = null;
    try {
      n2 = TestNode.createRouted(dir.resolve("node-2"), "node-2", SUBNET_2, "2");
      String u1 = TestNetns.runPrefix() + "u1";
      String u2 = TestNetns.runPrefix() + "u2";
      TestNetns a = n1.nodeNetns();
      TestNetns b = n2.nodeNetns();
      TestNetns.sh(
          "ip", "link", "add", u1, "netns", a.name(), "type", "veth", "peer", "name", u2, "netns",
          b.name());
      a.exec("ip", "addr", "add", "10.213.0.1/30", "dev", u1);
      b.exec("ip", "addr", "add", "10.213.0.2/30", "dev", u2);
      a.exec("ip", "link", "set", u1, "up");
      b.exec("ip", "link", "set", u2, "up");
      a.exec("ip", "route", "add", SUBNET_2 + "0/24", "via", "10.213.0.2");
      b.exec("ip", "route", "add", SUBNET_1 + "0/24", "via", "10.213.0.1");
      a.exec("ip", "-6", "addr", "add", "fd00:213::1/64", "dev", u1, "nodad");
      b.exec("ip", "-6", "addr", "add", "fd00:213::2/64", "dev", u2, "nodad");
      a.exec("ip", "-6", "route", "add", "fd00:214:2::/64", "via", "fd00:213::2");
      b.exec("ip", "-6", "route", "add", "fd00:214:1::/64", "via", "fd00:213::1");
      return new TwoNodeCluster(n1, n2, u1);
    } catch (IOException | RuntimeException e) {
      closeQuietly(n2);
      closeQuietly(n1);
      throw e;
    }
  }

  /** The underlay link's name inside node-1's namespace (for captures). */
  public String underlay() {
    return underlay1;
  }

  /** Writes the same config to both nodes. */
  public void writeConfig(String file, String yaml) throws IOException {
    node1.writeConfig(file, yaml);
    node2.writeConfig(file, yaml);
  }

  public void startProxies(
      IdentityProvider ids1, Authorizer authz1, IdentityProvider ids2, Authorizer authz2)
      throws Exception {
    node1.startProxy(TransportKind.EPOLL, InterceptionMode.iptables(), ids1, authz1);
    node2.startProxy(TransportKind.EPOLL, InterceptionMode.iptables(), ids2, authz2);
  }

  /**
   * Both proxies in {@code modes}'s interception mode (eBPF: a cgroup and bpffs per node), each
   * with an access log when {@code accessLog1}/{@code accessLog2} is not OFF.
   */
  public void startProxies(
      Interception.Setup modes,
      IdentityProvider ids1,
      Authorizer authz1,
      AccessLogSettings accessLog1,
      IdentityProvider ids2,
      Authorizer authz2,
      AccessLogSettings accessLog2)
      throws Exception {
    node1.startProxy(
        TransportKind.EPOLL, modes.nextNode(), ids1, authz1, accessLog1, TunnelSettings.defaults());
    node2.startProxy(
        TransportKind.EPOLL, modes.nextNode(), ids2, authz2, accessLog2, TunnelSettings.defaults());
  }

  /** Both proxies in {@code modes}'s interception mode, with {@code settings} for their tunnels. */
  public void startProxies(
      Interception.Setup modes,
      IdentityProvider ids1,
      Authorizer authz1,
      IdentityProvider ids2,
      Authorizer authz2,
      TunnelSettings settings)
      throws Exception {
    node1.startProxy(
        TransportKind.EPOLL, modes.nextNode(), ids1, authz1, AccessLogSettings.OFF, settings);
    node2.startProxy(
        TransportKind.EPOLL, modes.nextNode(), ids2, authz2, AccessLogSettings.OFF, settings);
  }

  /** As above, both proxies with {@code settings} for their tunnels. */
  public void startProxies(
      IdentityProvider ids1,
      Authorizer authz1,
      IdentityProvider ids2,
      Authorizer authz2,
      TunnelSettings settings)
      throws Exception {
    node1.startProxy(
        TransportKind.EPOLL,
        InterceptionMode.iptables(),
        ids1,
        authz1,
        AccessLogSettings.OFF,
        settings);
    node2.startProxy(
        TransportKind.EPOLL,
        InterceptionMode.iptables(),
        ids2,
        authz2,
        AccessLogSettings.OFF,
        settings);
  }

  /**
   * Both proxies in {@code modes}'s interception mode with certificates from one new test root,
   * each enforcing the authorization policies of its config ({@link PolicyAuthorizer}), no access
   * log, default tunnel settings.
   */
  public void startProxiesWithPolicy(Interception.Setup modes) throws Exception {
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    startProxies(
        modes,
        new TestIdentities(root),
        new PolicyAuthorizer(),
        AccessLogSettings.OFF,
        new TestIdentities(root),
        new PolicyAuthorizer(),
        AccessLogSettings.OFF);
  }

  /**
   * Both proxies in {@code modes}'s interception mode with certificates from one new test root,
   * every tunnel allowed, and {@code settings} for their tunnels.
   */
  public void startProxiesAllowingAll(Interception.Setup modes, TunnelSettings settings)
      throws Exception {
    TestIdentities.Ca root = TestIdentities.Ca.create("test-root");
    Authorizer allow = (s, d, p, src) -> new Decision(true, "default-allow", "allowed");
    startProxies(modes, new TestIdentities(root), allow, new TestIdentities(root), allow, settings);
  }

  /**
   * The tunnel tests' two pods: client (.10) on node-1 and echo-1 (.11, an ECHO server on 9000) on
   * node-2, each running as the service account named after its app, with pods.yaml written to both
   * nodes. The services and the proxies are the test's.
   */
  public void addClientAndEcho() throws IOException {
    node1.addPod("client", 10);
    node2.addPod("echo-1", 11);
    node2.serve("echo-1", 9000, TestServer.Mode.ECHO);
    writeConfig(
        "pods.yaml",
        Mesh.pod("client", node1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("echo-1", node2.ip("echo-1"), "echo", "node-2", "echo"));
  }

  /** Enrols the pods of {@link #addClientAndEcho()} with their nodes' proxies. */
  public void enrolClientAndEcho() {
    node1.enrol("client");
    node2.enrol("echo-1");
  }

  private static void closeQuietly(TestNode n) {
    if (n == null) {
      return;
    }
    try {
      n.close();
    } catch (Exception e) {
      // best effort while unwinding a failed set-up
    }
  }

  @Override
  public void close() throws Exception {
    Exception first = null;
    for (TestNode n : new TestNode[] {node2, node1}) {
      try {
        n.close(); // deleting a node namespace deletes its end of the underlay, and so the pair
      } catch (Exception e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
