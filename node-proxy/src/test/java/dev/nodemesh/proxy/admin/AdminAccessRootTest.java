package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;

/**
 * The admin bound to a non-loopback address, as the manifests bind it to the node or pod IP: a
 * request for {@code /config_dump} from that address (any pod on the node could make it) is
 * refused, the same request on the loopback listener is served, and {@code /healthz} and {@code
 * /metrics} stay open to both. All inside a namespace the test creates, with the address on its
 * {@code lo}.
 */
@RootTest
class AdminAccessRootTest {
  private static final String POD_IP = "10.215.9.2";

  @Test
  void theConfigDumpIsServedToLoopbackOnly() throws Exception {
    try (TestNetns ns = TestNetns.create("adminacc");
        NetworkNamespace handle = NetworkNamespace.open(ns.path())) {
      ns.exec("ip", "addr", "add", POD_IP + "/32", "dev", "lo");
      AdminServer admin;
      // The listening sockets are opened on this thread, inside the namespace.
      try (NetworkNamespace.Scope in = handle.enter()) {
        admin =
            AdminServer.start(
                new InetSocketAddress(POD_IP, 0), () -> "m 1\n", () -> null, () -> "{\"x\":1}");
      }
      try (admin) {
        int port = admin.address().getPort();
        String refused =
            LoggingEndpointRootTest.curl(ns, "http://" + POD_IP + ":" + port + "/config_dump");
        assertTrue(refused.startsWith("403 "), refused);
        assertTrue(refused.contains("came from " + POD_IP), refused);
        assertEquals(
            "200 {\"x\":1}",
            LoggingEndpointRootTest.curl(ns, "http://127.0.0.1:" + port + "/config_dump"));
        assertEquals(
            "200 ok\n",
            LoggingEndpointRootTest.curl(ns, "http://" + POD_IP + ":" + port + "/healthz"));
        assertEquals(
            "200 m 1\n",
            LoggingEndpointRootTest.curl(ns, "http://" + POD_IP + ":" + port + "/metrics"));
      }
    }
  }
}
