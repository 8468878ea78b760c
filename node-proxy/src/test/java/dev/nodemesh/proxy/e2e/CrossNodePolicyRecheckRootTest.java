package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Replies;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.testing.TestServer;
import dev.nodemesh.proxy.testing.TwoNodeCluster;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A policy change reaches open HBONE streams on the receiving node, in both interception modes:
 * client and other (node-1) hold connections to echo-1 (node-2) through the tunnel; a new config
 * denies client's principal, and node-2 resets client's stream (RST_STREAM, which node-1 turns into
 * a reset of the client's socket) and counts it with {@code reporter="destination"}, {@code
 * reason="policy_changed"}; other's connection keeps flowing.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class CrossNodePolicyRecheckRootTest {
  private static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client";

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TwoNodeCluster cluster;
  private Interception.Setup modes;

  @BeforeEach
  void setUp() throws Exception {
    modes = mode.setUp();
    cluster = TwoNodeCluster.create(tmp);
    cluster.node1.addPod("client", 10);
    cluster.node1.addPod("other", 12);
    cluster.node2.addPod("echo-1", 11);
    cluster.node2.serve("echo-1", 9000, TestServer.Mode.ECHO);
    cluster.writeConfig(
        "pods.yaml",
        Mesh.pod("client", cluster.node1.ip("client"), "client", "node-1", "client")
            + Mesh.pod("other", cluster.node1.ip("other"), "other", "node-1", "other")
            + Mesh.pod("echo-1", cluster.node2.ip("echo-1"), "echo", "node-2", "echo"));
    cluster.writeConfig("policy.yaml", "# none yet\n");
    cluster.startProxiesWithPolicy(modes);
    cluster.node1.enrol("client");
    cluster.node1.enrol("other");
    cluster.node2.enrol("echo-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(cluster, modes);
  }

  private double changed(TestNode node) {
    return node.metric(
        "nodemesh_policy_denials_total",
        "reason=\"policy_changed\"",
        "reporter=\"destination\"",
        "source_principal=\"" + CLIENT + "\"");
  }

  @Test
  void anOpenStreamTheNewPolicyDeniesIsResetAndAnAllowedOneKeepsFlowing() throws Exception {
    String echo = cluster.node2.ip("echo-1");
    try (Conn denied = cluster.node1.podConnect("client", echo, 9000);
        Conn allowed = cluster.node1.podConnect("other", echo, 9000)) {
      assertEquals("one", Replies.echo(denied, "one"));
      assertEquals("one", Replies.echo(allowed, "one"));

      cluster.writeConfig(
          "policy.yaml",
          """
          apiVersion: security.nodemesh.dev/v1alpha1
          kind: AuthorizationPolicy
          metadata: {name: deny-client, namespace: default}
          spec:
            action: DENY
            rules: [{from: [{principals: ["%s"]}]}]
          """
              .formatted(CLIENT));

      waitFor(
          () -> changed(cluster.node2) == 1.0,
          () -> cluster.node2.proxy().dataPlane().metrics().scrape());
      try {
        ByteBuffer buf = ByteBuffer.allocate(64);
        assertEquals(-1, denied.read(buf), "the denied connection carried data");
      } catch (IOException e) {
        assertTrue(e.getMessage() != null && e.getMessage().contains("reset"), e.toString());
      }
      assertEquals("two", Replies.echo(allowed, "two"));
      assertEquals("three", Replies.echo(allowed, "three"));
    }
    assertEquals(1.0, changed(cluster.node2), "only the denied stream was reset");
    assertEquals(0.0, changed(cluster.node1), "node-1 admitted nothing of node-2's");
  }
}
