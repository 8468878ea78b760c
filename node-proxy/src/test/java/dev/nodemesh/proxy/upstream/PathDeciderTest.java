package dev.nodemesh.proxy.upstream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.agent.EnrolledPod;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.UnknownHostException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * How the proxy reaches a target, decided over plain values: no socket is opened (the two namespace
 * handles are this process's own namespace, opened only so the paths can be told apart).
 */
class PathDeciderTest {
  private static final String TD = "cluster.local";
  private static final PathDecider HBONE_ON = new PathDecider("node-1", TD);
  private static final PathDecider HBONE_OFF = new PathDecider(null, TD);

  private static NetworkNamespace sourceNetns;
  private static NetworkNamespace localNetns;
  private static EnrolledPod source;
  private static EnrolledPod local;
  private static ConfigSnapshot snapshot;

  @BeforeAll
  static void setUp() throws Exception {
    sourceNetns = NetworkNamespace.open(Path.of("/proc/self/ns/net"));
    localNetns = NetworkNamespace.open(Path.of("/proc/self/ns/net"));
    source = pod("uid-client", "client", "10.1.0.10", sourceNetns);
    local = pod("uid-local", "local", "10.1.0.20", localNetns);
    snapshot =
        new ConfigSnapshot(
            1,
            List.of(
                workload("uid-client", "client", "10.1.0.10", "client-sa", "node-1"),
                // Enrolled here whatever the config says about its node: the local pod wins.
                workload("uid-local", "local", "10.1.0.20", "local-sa", "node-2"),
                workload("uid-here", "here", "10.1.0.30", "here-sa", "node-1"),
                workload("uid-remote", "remote", "10.2.0.11", "echo", "node-2"),
                workload("uid-unbound", "unbound", "10.2.0.12", "echo", ""),
                workload("uid-nosa", "nosa", "10.2.0.13", "", "node-2"),
                // Outside the capture scope (kube-system): no proxy serves it on node-2.
                workload("uid-dns", "dns", "10.2.0.14", "coredns", "node-2").withCaptured(false)),
            List.of());
  }

  @AfterAll
  static void tearDown() {
    sourceNetns.close();
    localNetns.close();
  }

  private static EnrolledPod pod(String uid, String name, String ip, NetworkNamespace netns)
      throws UnknownHostException {
    return new EnrolledPod(
        uid, name, "default", "/run/netns/" + name, List.of(InetAddress.getByName(ip)), netns);
  }

  private static Workload workload(String uid, String name, String ip, String sa, String node)
      throws UnknownHostException {
    return new Workload(
        uid, name, "default", List.of(InetAddress.getByName(ip)), Map.of(), sa, node, Map.of());
  }

  private static @Nullable EnrolledPod enrolled(InetAddress ip) {
    return local.ips().contains(ip) ? local : null;
  }

  private static UpstreamPath decide(
      PathDecider decider, EnrolledPod from, String ip, boolean passthrough) throws Exception {
    InetSocketAddress target = new InetSocketAddress(InetAddress.getByName(ip), 8080);
    Workload endpoint = passthrough ? null : snapshot.workloadByIp(target.getAddress());
    return decider.decide(snapshot, PathDeciderTest::enrolled, from, endpoint, target);
  }

  @ParameterizedTest(name = "hbone {0}, to {1}, passthrough {2}: {3}")
  @CsvSource({
    // a pod enrolled here: from inside its namespace, HBONE or not
    "true, 10.1.0.20, false, SameNode",
    "false, 10.1.0.20, false, SameNode",
    "true, 10.1.0.20, true, SameNode",
    // another node's workload: the tunnel, when there is one
    "true, 10.2.0.11, false, Hbone",
    "false, 10.2.0.11, false, Direct",
    // not bound to a node: not known to be here, so the tunnel
    "true, 10.2.0.12, false, Hbone",
    // this node's workload, not enrolled yet: direct, from the source
    "true, 10.1.0.30, false, Direct",
    // another node's pod outside the mesh: nothing serves HBONE for it, so direct
    "true, 10.2.0.14, false, Direct",
    // not a mesh destination: as the pod would have connected
    "true, 10.2.0.11, true, Direct",
    "true, 192.0.2.1, true, Direct",
  })
  void choosesTheWay(boolean hbone, String ip, boolean passthrough, String kind) throws Exception {
    UpstreamPath path = decide(hbone ? HBONE_ON : HBONE_OFF, source, ip, passthrough);
    assertEquals(kind, path.getClass().getSimpleName(), path.toString());
    assertEquals(new InetSocketAddress(InetAddress.getByName(ip), 8080), path.target());
    // The socket (for HBONE the tunnel's) is made in the local destination's namespace only.
    assertSame(kind.equals("SameNode") ? localNetns : sourceNetns, path.from());
  }

  @Test
  void sameNodeNamesTheLocalPod() throws Exception {
    UpstreamPath.SameNode path =
        (UpstreamPath.SameNode) decide(HBONE_ON, source, "10.1.0.20", false);
    assertSame(local, path.destination());
  }

  @Test
  void hboneCarriesGatewayAndTheIdentitiesBothEndsMustProve() throws Exception {
    UpstreamPath.Hbone path = (UpstreamPath.Hbone) decide(HBONE_ON, source, "10.2.0.11", false);
    assertSame(source, path.source());
    assertEquals(new InetSocketAddress(InetAddress.getByName("10.2.0.11"), 15008), path.gateway());
    assertEquals(new SpiffeId(TD, "default", "client-sa"), path.sourceIdentity());
    assertEquals(new SpiffeId(TD, "default", "echo"), path.expectedIdentity());
  }

  @Test
  void aDestinationWithoutServiceAccountMustProveTheDefaultOne() throws Exception {
    UpstreamPath.Hbone path = (UpstreamPath.Hbone) decide(HBONE_ON, source, "10.2.0.13", false);
    assertEquals(new SpiffeId(TD, "default", "default"), path.expectedIdentity());
  }

  @Test
  void aSourceTheConfigDoesNotKnowIsRefusedNeverSentInPlaintext() throws Exception {
    EnrolledPod stranger = pod("uid-stranger", "stranger", "10.1.0.99", sourceNetns);
    UpstreamPath path = decide(HBONE_ON, stranger, "10.2.0.11", false);
    assertEquals(new UpstreamPath.NoIdentity(stranger, path.target()), path);
    // Without HBONE the same source goes direct, as before identity existed.
    assertEquals(
        new UpstreamPath.Direct(sourceNetns, path.target()),
        decide(HBONE_OFF, stranger, "10.2.0.11", false));
  }

  @Test
  void theSourceWorkloadIsFoundByUidThenByNameAndNamespace() throws Exception {
    // Same IP and name, a new UID (recreated before the config caught up): by name.
    EnrolledPod recreated = pod("uid-new", "client", "10.1.0.10", sourceNetns);
    assertEquals("uid-client", PathDecider.configuredWorkload(snapshot, recreated).uid());
    // Same IP and UID, another name: by UID.
    EnrolledPod renamed = pod("uid-client", "renamed", "10.1.0.10", sourceNetns);
    assertEquals("uid-client", PathDecider.configuredWorkload(snapshot, renamed).uid());
    // Another pod's IP with neither: unknown.
    EnrolledPod other = pod("uid-x", "x", "10.1.0.10", sourceNetns);
    assertNull(PathDecider.configuredWorkload(snapshot, other));
  }
}
