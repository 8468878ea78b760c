package dev.nodemesh.proxy.e2e;

import static dev.nodemesh.proxy.testing.Await.waitFor;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.load.ConfigLoader;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.PodSockets.Conn;
import dev.nodemesh.proxy.testing.Replies;
import dev.nodemesh.proxy.testing.Teardown;
import dev.nodemesh.proxy.testing.TestNode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
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
 * A policy change reaches connections already open on the same node, in both interception modes:
 * the client pod (service account {@code client-sa}) holds a connection, a new snapshot denies its
 * principal, and the proxy resets it at once and counts it as {@code
 * nodemesh_policy_denials_total{reason="policy_changed"}}; a connection from another pod (service
 * account {@code default}) that the new policy still allows stays up and keeps working. Clients are
 * pod sockets ({@link TestNode#podConnect}): in eBPF mode the test JVM's own are not intercepted.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
@Timeout(value = 3, unit = TimeUnit.MINUTES)
class PolicyRecheckRootTest {
  private static final String CLIENT = "spiffe://cluster.local/ns/default/sa/client-sa";
  private static final String WEB_VIP = "10.97.0.40";
  private static final String DENY_CLIENT =
      """
      apiVersion: security.nodemesh.dev/v1alpha1
      kind: AuthorizationPolicy
      metadata: {name: deny-client, namespace: default}
      spec:
        action: DENY
        rules: [{from: [{principals: ["%s"]}]}]
      ---
      """
          .formatted(CLIENT);

  @Parameter Interception mode;
  @TempDir Path tmp;
  private TestNode node;
  private Interception.Setup modes;

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addStandardMesh();
    node.addPod("web-1", 14);
    node.serveHttp("web-1", 8080);
    node.writeConfig(
        "pods.yaml",
        Mesh.pods()
                .replace(
                    "name: client\n  namespace: default\n  uid: uid-client\n  labels:\n"
                        + "    app: client\nspec:\n",
                    "name: client\n  namespace: default\n  uid: uid-client\n  labels:\n"
                        + "    app: client\nspec:\n  serviceAccountName: client-sa\n")
            + Mesh.httpPod("web-1", 14, "web"));
    // Service web has an HTTPRoute: its connections take the L7 path.
    node.writeConfig(
        "services.yaml",
        Mesh.service("echo", Mesh.VIP, "echo")
            + "---\n"
            + Mesh.httpService("web", WEB_VIP, "web")
            + Mesh.httpRoute("web"));
    modes = mode.setUp();
    node.startProxy(TransportKind.EPOLL, modes.nextNode());
    node.enrolStandardMesh();
    node.enrol("web-1");
  }

  @AfterEach
  void tearDown() throws Exception {
    Teardown.close(node, modes);
  }

  /** Writes the policy file and waits until the proxy serves exactly the directory's content. */
  private void applyPolicies(String yaml) throws Exception {
    node.writeConfig("policy.yaml", yaml);
    ConfigSnapshot want = ConfigLoader.load(node.configDir());
    waitFor(
        () -> node.proxy().dataPlane().snapshots().current().sameContent(want),
        () -> node.proxy().dataPlane().snapshots().current().describe());
  }

  private double changed() {
    return node.metric(
        "nodemesh_policy_denials_total",
        "reason=\"policy_changed\"",
        "reporter=\"source\"",
        "source_principal=\"" + CLIENT + "\"");
  }

  @Test
  void anOpenL4ConnectionTheNewPolicyDeniesIsResetAndAnAllowedOneKeepsFlowing() throws Exception {
    try (Conn denied = node.podConnect("client", node.ip("echo-1"), 9000);
        Conn allowed = node.podConnect("echo-2", node.ip("echo-1"), 9000)) {
      assertEquals("one", Replies.echo(denied, "one"));
      assertEquals("one", Replies.echo(allowed, "one"));

      applyPolicies(DENY_CLIENT);

      waitFor(() -> changed() == 1.0, () -> "policy_changed: " + changed());
      assertResetOnRead(denied);
      assertEquals("two", Replies.echo(allowed, "two"));
      assertEquals("three", Replies.echo(allowed, "three"));
    }
    assertEquals(1.0, changed(), "only the denied connection was reset");
    assertEquals(
        1.0,
        node.metric(
            "nodemesh_policy_denials_total",
            "reason=\"policy_changed\"",
            "destination_workload=\"echo-1\""));
    waitFor(
        () -> node.proxy().dataPlane().admissions().size() == 0,
        () -> "still registered: " + node.proxy().dataPlane().admissions().size());
  }

  @Test
  void anOpenL7KeepAliveConnectionTheNewPolicyDeniesIsResetAndAnAllowedOneKeepsServing()
      throws Exception {
    try (Conn denied = node.podConnect("client", WEB_VIP, 80);
        Conn allowed = node.podConnect("echo-1", WEB_VIP, 80)) {
      assertTrue(get(denied, "/one").contains("pod=web-1"));
      assertTrue(get(allowed, "/one").contains("pod=web-1"));

      applyPolicies(DENY_CLIENT);

      waitFor(() -> changed() == 1.0, () -> "policy_changed: " + changed());
      assertResetOnRead(denied);
      // The same kept-alive connection goes on serving the allowed caller.
      assertTrue(get(allowed, "/two").contains("uri=/two"));
      assertTrue(get(allowed, "/three").contains("uri=/three"));
    }
    assertEquals(1.0, changed());
    assertEquals(
        1.0,
        node.metric(
            "nodemesh_policy_denials_total",
            "reason=\"policy_changed\"",
            "destination_workload=\"web-1\""));
    // A new connection of the denied client is refused by the ordinary check, at accept.
    assertEquals(0.0, node.metric("nodemesh_policy_denials_total", "reason=\"denied_by_policy\""));
    assertRefused("client", WEB_VIP, 80);
    assertEquals(1.0, node.metric("nodemesh_policy_denials_total", "reason=\"denied_by_policy\""));
    assertEquals(1.0, changed());
  }

  /** A new connection the proxy accepts and resets: the client never reads data. */
  private void assertRefused(String pod, String ip, int port) throws IOException {
    Conn ch;
    try {
      ch = node.podConnect(pod, ip, port);
    } catch (SocketException e) {
      // eBPF mode: the listener is on loopback, so the reset can arrive before connect() returns.
      assertTrue(e.getMessage() != null && e.getMessage().contains("reset"), e.toString());
      return;
    }
    try (ch) {
      ch.write(
          ByteBuffer.wrap("GET / HTTP/1.1\r\nhost: web\r\n\r\n".getBytes(StandardCharsets.UTF_8)));
      assertResetOnRead(ch);
    } catch (IOException e) {
      // A write into the reset connection.
      assertTrue(
          e.getMessage() != null
              && (e.getMessage().contains("reset") || e.getMessage().contains("Broken pipe")),
          e.toString());
    }
  }

  /**
   * The proxy has reset the connection: a read (no request is outstanding) ends in a reset, or in
   * end of stream if the RST raced it, never in data.
   */
  private static void assertResetOnRead(Conn ch) {
    try {
      ByteBuffer buf = ByteBuffer.allocate(1024);
      int n = ch.read(buf);
      assertEquals(-1, n, "the connection carried data after it was denied");
    } catch (IOException e) {
      assertTrue(e.getMessage() != null && e.getMessage().contains("reset"), e.toString());
    }
  }

  /** One HTTP/1.1 request on a kept-alive connection; the response's body (status 200 asserted). */
  private static String get(Conn ch, String path) throws IOException {
    ch.write(
        ByteBuffer.wrap(
            ("GET " + path + " HTTP/1.1\r\nhost: web\r\n\r\n").getBytes(StandardCharsets.UTF_8)));
    String head = readHead(ch);
    assertTrue(head.startsWith("HTTP/1.1 200"), head);
    String lower = head.toLowerCase(Locale.ROOT);
    int at = lower.indexOf("content-length:");
    if (at >= 0) {
      int end = lower.indexOf("\r\n", at);
      int length = Integer.parseInt(lower.substring(at + 15, end).strip());
      return new String(readExactly(ch, length), StandardCharsets.UTF_8);
    }
    assertTrue(lower.contains("transfer-encoding: chunked"), head);
    ByteArrayOutputStream body = new ByteArrayOutputStream();
    while (true) {
      String size = readLine(ch);
      int n = Integer.parseInt(size.split(";")[0].strip(), 16);
      if (n == 0) {
        while (!readLine(ch).isEmpty()) {
          // trailers
        }
        return body.toString(StandardCharsets.UTF_8);
      }
      body.writeBytes(readExactly(ch, n));
      readLine(ch); // the CRLF after the chunk
    }
  }

  private static String readHead(Conn ch) throws IOException {
    StringBuilder head = new StringBuilder();
    while (true) {
      String line = readLine(ch);
      if (line.isEmpty()) {
        return head.toString();
      }
      head.append(line).append("\r\n");
    }
  }

  /** One CRLF-terminated line, without it (byte by byte: the rest stays in the socket). */
  private static String readLine(Conn ch) throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream();
    ByteBuffer one = ByteBuffer.allocate(1);
    while (true) {
      one.clear();
      if (ch.read(one) < 0) {
        throw new IOException("closed in a line: " + line.toString(StandardCharsets.UTF_8));
      }
      byte b = one.get(0);
      if (b == '\n') {
        String s = line.toString(StandardCharsets.UTF_8);
        return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
      }
      line.write(b);
    }
  }

  private static byte[] readExactly(Conn ch, int n) throws IOException {
    ByteBuffer buf = ByteBuffer.allocate(n);
    while (buf.hasRemaining()) {
      if (ch.read(buf) < 0) {
        throw new IOException("closed after " + buf.position() + " of " + n + " bytes");
      }
    }
    return buf.array();
  }
}
