package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** The receiving side names the caller's workload only when its address and identity agree. */
class CallerWorkloadTest {
  private static final String TD = "cluster.local";

  private static Workload pod(String name, String ns, String ip, String sa) throws Exception {
    return new Workload(
        "uid-" + name,
        name,
        ns,
        List.of(InetAddress.getByName(ip)),
        Map.of(),
        sa,
        "node-1",
        Map.of());
  }

  private final ConfigSnapshot snapshot;

  CallerWorkloadTest() throws Exception {
    snapshot =
        new ConfigSnapshot(
            1,
            List.of(
                pod("client-7d9", "default", "10.214.1.10", "client"),
                pod("batch-1", "jobs", "10.214.1.11", ""),
                pod("other", "default", "10.214.1.12", "other")),
            List.of());
  }

  private String caller(String ip, SpiffeId id) throws Exception {
    return ConnectStreamHandler.callerWorkload(snapshot, InetAddress.getByName(ip), id, TD);
  }

  @Test
  void theWorkloadAtTheCallersAddressIsNamedWhenItsIdentityMatches() throws Exception {
    assertEquals("client-7d9", caller("10.214.1.10", new SpiffeId(TD, "default", "client")));
    // No service account in the config is the namespace's "default" one.
    assertEquals("batch-1", caller("10.214.1.11", new SpiffeId(TD, "jobs", "default")));
  }

  @Test
  void anotherServiceAccountNamespaceOrAnUnknownAddressStaysUnknown() throws Exception {
    assertEquals("unknown", caller("10.214.1.10", new SpiffeId(TD, "default", "other")));
    assertEquals("unknown", caller("10.214.1.10", new SpiffeId(TD, "prod", "client")));
    assertEquals("unknown", caller("10.214.1.12", new SpiffeId(TD, "default", "client")));
    assertEquals("unknown", caller("10.214.1.99", new SpiffeId(TD, "default", "client")));
    assertEquals(
        "unknown", caller("10.214.1.10", new SpiffeId("other.domain", "default", "client")));
  }
}
