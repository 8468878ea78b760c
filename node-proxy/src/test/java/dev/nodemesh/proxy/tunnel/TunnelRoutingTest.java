package dev.nodemesh.proxy.tunnel;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.model.config.Workload;
import java.net.InetAddress;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Which destinations take the tunnel: a pure decision over the workload and this node. */
class TunnelRoutingTest {
  @ParameterizedTest(name = "on {0}, enrolled here {1}: tunnel {2}")
  @CsvSource({
    "node-1, false, false", // this node's pod, not enrolled yet: direct, as today
    "node-1, true, false", // this node's enrolled pod: direct, one hop
    "node-2, false, true", // another node's pod: tunnel
    "node-2, true, false", // enrolled here whatever the config says: the local pod wins
    "'', false, true", // not bound to a node: not known to be here, so tunnel
  })
  void onlyWorkloadsElsewhereTakeTheTunnel(String nodeName, boolean enrolled, boolean tunnel)
      throws Exception {
    Workload w =
        new Workload(
            "uid",
            "echo-1",
            "default",
            List.of(InetAddress.getByName("10.214.2.11")),
            Map.of(),
            "echo",
            nodeName,
            Map.of());
    assertEquals(tunnel, Tunnel.crossesNodes(w, "node-1", enrolled));
  }
}
