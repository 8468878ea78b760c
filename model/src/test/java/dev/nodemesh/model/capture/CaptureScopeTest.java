package dev.nodemesh.model.capture;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.PeerAuthentication;
import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;

/** The one capture setting, and what the config derives from it. */
class CaptureScopeTest {
  private static Workload pod(String ns, String name, String ip) throws Exception {
    return new Workload(
        ns + "/" + name,
        name,
        ns,
        List.of(InetAddress.getByName(ip)),
        Map.of("app", name),
        "default",
        "node-1",
        Map.of());
  }

  @Test
  void excludesNamespacesAndSinglePods() {
    CaptureScope s = CaptureScope.of(List.of(), List.of("shop/legacy-db"));
    assertEquals(Set.copyOf(CaptureScope.DEFAULT_EXCLUDED_NAMESPACES), s.excludedNamespaces());
    assertTrue(s.excludes("kube-system", "coredns-1"));
    assertTrue(s.excludes("shop", "legacy-db"));
    assertFalse(s.excludes("shop", "cart"));
    assertFalse(s.excludes("legacy-db", "shop"));
    CaptureScope only = CaptureScope.of(List.of("team-x"), List.of());
    assertFalse(only.excludes("kube-system", "coredns-1"), "a named list replaces the default");
  }

  @Test
  void aMalformedPodEntryIsRefused() {
    for (String bad : List.of("legacy-db", "/x", "x/", "a/b/c")) {
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class, () -> CaptureScope.of(List.of(), List.of(bad)));
      assertTrue(e.getMessage().contains(bad), e.getMessage());
    }
  }

  @Test
  void theSnapshotMarksExcludedWorkloadsUncapturedAndKeepsTheRest() throws Exception {
    Workload dns = pod("kube-system", "coredns-1", "10.1.0.5");
    Workload app = pod("shop", "cart", "10.1.0.6");
    ConfigSnapshot in = new ConfigSnapshot(3, List.of(dns, app), List.of());
    ConfigSnapshot out = CaptureScope.DEFAULT.apply(in);
    assertEquals(3, out.version());
    assertFalse(out.workloadByIp(InetAddress.getByName("10.1.0.5")).captured());
    assertTrue(out.workloadByIp(InetAddress.getByName("10.1.0.6")).captured());
    ConfigSnapshot none = CaptureScope.of(List.of("team-x"), List.of()).apply(in);
    assertSame(in, none, "nothing excluded: the same snapshot");
  }

  @Test
  void strictOverUncapturedWorkloadsIsReported() throws Exception {
    Workload dns = pod("kube-system", "coredns-1", "10.1.0.5");
    Workload app = pod("shop", "cart", "10.1.0.6");
    PeerAuthentication meshStrict =
        new PeerAuthentication(
            "default", ConfigSnapshot.ROOT_NAMESPACE, null, PeerAuthentication.Mode.STRICT);
    ConfigSnapshot s =
        CaptureScope.DEFAULT.apply(
            new ConfigSnapshot(1, List.of(dns, app), List.of(), List.of(), List.of(meshStrict)));
    assertEquals(
        List.of(new NamespacedName("kube-system", "coredns-1")), s.uncapturedUnderStrict());
    PeerAuthentication dnsPermissive =
        new PeerAuthentication("open", "kube-system", null, PeerAuthentication.Mode.PERMISSIVE);
    ConfigSnapshot relaxed =
        CaptureScope.DEFAULT.apply(
            new ConfigSnapshot(
                1, List.of(dns, app), List.of(), List.of(), List.of(meshStrict, dnsPermissive)));
    assertEquals(List.of(), relaxed.uncapturedUnderStrict());
  }
}
