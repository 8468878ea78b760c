package dev.nodemesh.proxy.admin;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.bpf.testing.TestNetns;
import dev.nodemesh.model.admin.AdminHttpServer;
import java.net.InetSocketAddress;
import org.junit.jupiter.api.Test;
import org.slf4j.LoggerFactory;

/**
 * The admin bound to a non-loopback address, as the manifests bind it to the pod IP: a level change
 * from that address is refused, the same change through the loopback listener {@link
 * AdminHttpServer} adds (where {@code kubectl port-forward} and {@code exec} arrive) is accepted.
 * All inside a namespace the test creates, with the address on its {@code lo}.
 */
@RootTest
class LoggingEndpointRootTest {
  private static final String LOGGER = "dev.nodemesh.test.rootlogging";
  private static final String POD_IP = "10.215.9.1";

  @Test
  void onlyLoopbackPeersChangeLevels() throws Exception {
    Logger logger = (Logger) LoggerFactory.getLogger(LOGGER);
    try (TestNetns ns = TestNetns.create("admin");
        NetworkNamespace handle = NetworkNamespace.open(ns.path())) {
      ns.exec("ip", "addr", "add", POD_IP + "/32", "dev", "lo");
      AdminServer admin;
      // The listening sockets are opened on this thread, inside the namespace.
      try (NetworkNamespace.Scope in = handle.enter()) {
        admin =
            AdminServer.start(new InetSocketAddress(POD_IP, 0), () -> "", () -> null, () -> "{}");
      }
      try (admin) {
        int port = admin.address().getPort();
        String change = "/logging?logger=" + LOGGER + "&level=debug";

        String refused = curl(ns, "-X", "POST", "http://" + POD_IP + ":" + port + change);
        assertTrue(refused.startsWith("403 "), refused);
        assertTrue(refused.contains("came from " + POD_IP), refused);
        assertEquals(null, logger.getLevel(), "nothing changed");
        assertTrue(
            curl(ns, "http://" + POD_IP + ":" + port + "/logging").startsWith("200 "),
            "reading stays open");

        String accepted = curl(ns, "-X", "POST", "http://127.0.0.1:" + port + change);
        assertEquals("200 " + LOGGER + " DEBUG\n", accepted);
        assertEquals(Level.DEBUG, logger.getLevel());
      }
    } finally {
      logger.setLevel(null);
    }
  }

  /** "status body" of one request made from inside {@code ns}. */
  static String curl(TestNetns ns, String... args) throws Exception {
    String[] cmd = new String[args.length + 6];
    cmd[0] = "curl";
    cmd[1] = "-s";
    cmd[2] = "--max-time";
    cmd[3] = "10";
    cmd[4] = "-w";
    cmd[5] = "\n%{http_code}";
    System.arraycopy(args, 0, cmd, 6, args.length);
    String out = ns.exec(cmd);
    int nl = out.lastIndexOf('\n');
    return out.substring(nl + 1) + " " + out.substring(0, nl);
  }
}
