package dev.nodemesh.control.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.read.ListAppender;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.state.SnapshotStore;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;
import org.slf4j.LoggerFactory;

/**
 * A node proxy restarted while the control plane is down, with real capture in both interception
 * modes (clients are pod processes, {@link PodClient}, so eBPF mode sees them too): the standard
 * mesh (client as {@code client-sa}, three echo pods) under a DENY policy for the client and a
 * STRICT PeerAuthentication for the namespace, plus an "outside" pod that is not enrolled.
 *
 * <ol>
 *   <li>With the control plane up, the proxy takes the config and saves it on the node.
 *   <li>Proxy and control plane stop; the proxy starts again with the control plane still down: the
 *       saved config is in force before the first pod is enrolled, so the very first connections
 *       are denied exactly as before, and mesh traffic that policy allows still flows.
 *   <li>The saved file is corrupted and the proxy restarted again: it says so in one log line and
 *       refuses every connection to an enrolled pod ({@code no_config}), while outbound traffic to
 *       a destination outside the mesh passes.
 *   <li>The control plane comes back on the same port: the proxy takes its config, traffic policy
 *       allows flows again, what policy denies stays denied, and a good snapshot is saved again.
 * </ol>
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class SavedConfigRootTest {
  private static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client-sa";

  @Parameter Interception mode;
  @TempDir Path tmp;

  private static String policies() {
    return "apiVersion: security.nodemesh.dev/v1alpha1\nkind: AuthorizationPolicy\n"
        + "metadata: {name: deny-client, namespace: default}\n"
        + ("spec: {action: DENY, rules: [{from: [{principals: [\"" + CLIENT + "\"]}]}]}\n---\n")
        + "apiVersion: security.nodemesh.dev/v1alpha1\nkind: PeerAuthentication\n"
        + "metadata: {name: strict, namespace: default}\n"
        + "spec: {mtls: {mode: STRICT}}\n";
  }

  private static NodeProxy startProxy(
      TestNode node, InterceptionMode interception, int port, Path state) throws Exception {
    return node.startProxy(
        FixedPortControlPlane.proxyConfig(node, interception, port, state).build());
  }

  private static void enrolAll(TestNode node) {
    for (String p : List.of("client", "echo-1", "echo-2", "echo-3")) {
      node.enrol(p);
    }
  }

  private static boolean saved(SnapshotStore store) {
    try {
      return store.load() instanceof SnapshotStore.Load.Found;
    } catch (IOException e) {
      return false;
    }
  }

  /** Accepted on the pod's listener, then reset: never any data. */
  private static void assertRefused(TestNode node, String pod, String ip, int port)
      throws IOException {
    String outcome = PodClient.connect(node, pod, ip, port);
    assertTrue(PodClient.refused(outcome), pod + " -> " + ip + ":" + port + ": " + outcome);
  }

  /** Through, answered by a pod whose name starts with {@code server}. */
  private static void assertServed(TestNode node, String pod, String ip, int port, String server)
      throws IOException {
    String outcome = PodClient.connect(node, pod, ip, port);
    assertTrue(
        outcome.startsWith("data:" + server), pod + " -> " + ip + ":" + port + ": " + outcome);
  }

  /** The policies' verdicts: the client denied, plaintext refused, other mesh traffic through. */
  private static void assertPoliciesHold(TestNode node) throws IOException {
    assertRefused(node, "client", Mesh.VIP, 80);
    assertRefused(node, "client", node.ip("echo-1"), 8080);
    assertRefused(node, "outside", node.ip("echo-1"), 8080);
    assertServed(node, "echo-1", node.ip("echo-2"), 8080, "echo-2");
    assertServed(node, "echo-3", Mesh.VIP, 80, "echo-");
  }

  @Test
  void restartWithTheControlPlaneDownKeepsDenyingAndACorruptSaveFailsClosedUntilXdsReturns()
      throws Exception {
    Path state = tmp.resolve("state");
    SnapshotStore store = new SnapshotStore(state, Clock.systemUTC());
    // One interception for the whole life of the node: a restarted proxy adopts what is pinned.
    try (Interception.Setup setup = mode.setUp();
        TestNode node = TestNode.create(tmp.resolve("node"))) {
      InterceptionMode interception = setup.nextNode();
      node.addStandardMesh();
      node.writeConfig(
          "pods.yaml",
          Mesh.pods()
              .replace(
                  "name: client\n  namespace: default\n  uid: uid-client\n  labels:\n"
                      + "    app: client\nspec:\n",
                  "name: client\n  namespace: default\n  uid: uid-client\n  labels:\n"
                      + "    app: client\nspec:\n  serviceAccountName: client-sa\n"));
      node.writeConfig("policy.yaml", policies());
      node.addPod("outside", 20);
      node.serve("outside", 7000, TestServer.Mode.NAME);
      int port = FixedPortControlPlane.freePort();

      // 1. Config from the control plane, saved on the node.
      ControlPlane cp = FixedPortControlPlane.start(node, port);
      try {
        startProxy(node, interception, port, state);
        waitFor(
            () -> node.proxy().dataPlane().snapshots().current().peerAuthentications().size() == 1);
        enrolAll(node);
        assertPoliciesHold(node);
        waitFor(() -> saved(store));
        assertEquals(1.0, node.metric("nodemesh_config_source", "source=\"xds\""));
      } finally {
        node.stopProxy();
        cp.close();
      }
      ConfigSnapshot before =
          assertInstanceOf(SnapshotStore.Load.Found.class, store.load()).config().toSnapshot();

      // 2. Restart with the control plane down: the saved config holds from the first connection.
      startProxy(node, interception, port, state);
      ConfigSnapshot loaded = node.proxy().dataPlane().snapshots().current();
      assertTrue(loaded.sameContent(before), loaded.describe());
      assertEquals(1.0, node.metric("nodemesh_config_source", "source=\"saved\""));
      enrolAll(node);
      assertPoliciesHold(node);
      assertEquals(
          2.0,
          node.metric("nodemesh_policy_denials_total", "reason=\"denied_by_policy\""),
          "both of the client's connections, denied by the saved DENY policy");
      assertEquals(
          1.0, node.metric("nodemesh_policy_denials_total", "reason=\"plaintext_strict\""));
      node.stopProxy();

      // 3. A corrupt save: ignored with a clear log line, connections to pods refused.
      byte[] bytes = Files.readAllBytes(store.file());
      bytes[bytes.length - 3] ^= 0x5a;
      Files.write(store.file(), bytes);
      Logger proxyLog = (Logger) LoggerFactory.getLogger(NodeProxy.class);
      ListAppender<ILoggingEvent> logs = new ListAppender<>();
      logs.start();
      proxyLog.addAppender(logs);
      try {
        startProxy(node, interception, port, state);
      } finally {
        proxyLog.detachAppender(logs);
      }
      List<String> errors =
          logs.list.stream()
              .filter(e -> e.getLevel() == ch.qos.logback.classic.Level.ERROR)
              .map(ILoggingEvent::getFormattedMessage)
              .toList();
      assertEquals(1, errors.size(), errors.toString());
      assertTrue(
          errors.get(0).contains(store.file() + " is not usable, ignoring it (checksum mismatch"),
          errors.get(0));
      assertTrue(errors.get(0).contains("refused until the control plane's first config"));
      assertEquals(0, node.proxy().dataPlane().snapshots().current().version());
      enrolAll(node);
      assertRefused(node, "echo-1", node.ip("echo-2"), 8080);
      assertRefused(node, "outside", node.ip("echo-1"), 8080);
      assertRefused(node, "client", node.ip("echo-1"), 8080);
      assertEquals(3.0, node.metric("nodemesh_policy_denials_total", "reason=\"no_config\""));
      // Outbound to a destination outside the mesh still passes.
      assertServed(node, "client", node.ip("outside"), 7000, "outside");

      // 4. The control plane returns: config from xDS, saved again, policy as before.
      cp = FixedPortControlPlane.start(node, port);
      try {
        // The proxy reconnects with backoff (up to 30 s between attempts).
        long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
        while (node.proxy().dataPlane().snapshots().current().version() == 0) {
          assertTrue(System.nanoTime() < deadline, "config from the control plane that returned");
          Thread.sleep(100);
        }
        assertTrue(
            node.proxy().dataPlane().snapshots().current().sameContent(before),
            node.proxy().dataPlane().snapshots().current().describe());
        assertPoliciesHold(node);
        assertEquals(1.0, node.metric("nodemesh_config_source", "source=\"xds\""));
        waitFor(() -> saved(store));
      } finally {
        node.stopProxy();
        cp.close();
      }
    }
  }
}
