package dev.nodemesh.proxy.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.netns.NetworkNamespace;
import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.proxy.IsolationSettings;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import io.micrometer.core.instrument.Counter;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One node, a hostile pod and a victim pod: the attacker opens {@value #ATTACK} idle connections to
 * a Service (ten times its budget of {@value #BUDGET}) and holds them, while the victim keeps
 * making requests through the same proxy, each on a new connection, over L7 (the Service's
 * HTTPRoute) and L4 (straight to the endpoint's IP). Every victim request succeeds, {@code
 * /healthz} stays 200, the attacker's excess is refused and counted with its pod's labels, and once
 * the attacker lets go the process's fds come back to where they were. The sockets and namespaces
 * are the test's own and go in {@link #tearDown} whatever happened.
 */
@RootTest
class HostilePodRootTest {
  static final String VIP = "10.97.0.32";
  static final int BUDGET = 100;
  static final int ATTACK = 1000;
  static final int VICTIM_REQUESTS = 50;

  @TempDir Path tmp;
  private TestNode node;
  private final List<SocketChannel> attack = new ArrayList<>();
  private final HttpClient http =
      HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();

  @BeforeEach
  void setUp() throws Exception {
    node = TestNode.create(tmp);
    node.addPod("victim", 10);
    node.addPod("web-1", 11);
    node.addPod("attacker", 12);
    node.serveHttp("web-1", 8080);
    node.writeConfig(
        "mesh.yaml",
        Mesh.httpPod("victim", 10, "victim")
            + Mesh.httpPod("attacker", 12, "attacker")
            + Mesh.httpPod("web-1", 11, "web")
            + Mesh.httpService("web", VIP, "web")
            + Mesh.httpRoute("web"));
    node.startProxy(
        node.proxyConfig()
            .isolation(IsolationSettings.DEFAULT.withMaxConnectionsPerPod(BUDGET))
            .build());
    for (String pod : List.of("victim", "web-1", "attacker")) {
      node.enrol(pod);
    }
  }

  @AfterEach
  void tearDown() throws Exception {
    try {
      closeAttack();
    } finally {
      node.close();
    }
  }

  private void closeAttack() {
    for (SocketChannel ch : attack) {
      try {
        ch.close();
      } catch (IOException e) {
        // already reset by the proxy
      }
    }
    attack.clear();
  }

  @Test
  void aPodHoldingManyIdleConnectionsNeitherStarvesAnotherPodNorTheProxy() throws Exception {
    victimRequests(5); // warm: pools, series, the Service's state
    long baseline = openFds();

    // The attacker's sockets are made inside its namespace (all at once), then connected.
    try (NetworkNamespace ns = NetworkNamespace.open(node.pod("attacker").path());
        NetworkNamespace.Scope in = ns.enter()) {
      for (int i = 0; i < ATTACK; i++) {
        attack.add(SocketChannel.open());
      }
    }
    int connected = 0;
    for (SocketChannel ch : attack) {
      try {
        ch.connect(new InetSocketAddress(VIP, 80));
        connected++;
      } catch (IOException e) {
        // a reset may come before the handshake is seen as done
      }
    }
    assertTrue(connected > BUDGET, "the attack got its connections accepted: " + connected);

    // During the attack: every victim request succeeds and the proxy is healthy.
    victimRequests(VICTIM_REQUESTS);
    assertEquals(200, healthz(), "/healthz during the attack");
    Counter refused =
        node.proxy()
            .dataPlane()
            .metrics()
            .registry()
            .find("nodemesh.pod.connections.refused")
            .tags("source_workload", "attacker", "reason", "budget")
            .counter();
    assertTrue(refused != null && refused.count() >= ATTACK - BUDGET - 5, "refusals counted");
    assertTrue(
        openFds() < baseline + 2L * BUDGET + ATTACK + 100,
        "the proxy holds at most the attacker's budget: " + openFds() + " vs " + baseline);

    closeAttack();
    long deadline = System.nanoTime() + Duration.ofSeconds(20).toNanos();
    while (openFds() > baseline + 10 && System.nanoTime() < deadline) {
      Thread.sleep(100);
    }
    assertTrue(openFds() <= baseline + 10, "fds back: " + openFds() + " vs " + baseline);
    victimRequests(5);
    assertEquals(200, healthz());
  }

  /** {@code n} L7 and {@code n} L4 requests from the victim, each on a new connection. */
  private void victimRequests(int n) throws IOException {
    String l7 =
        node.pod("victim")
            .exec(
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}\\n",
                "--max-time",
                "3",
                "-H",
                "Connection: close",
                "http://" + VIP + "/r/[1-" + n + "]");
    assertEquals(n, l7.lines().filter("200"::equals).count(), "L7: " + l7);
    String l4 =
        node.pod("victim")
            .exec(
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}\\n",
                "--max-time",
                "3",
                "-H",
                "Connection: close",
                "http://" + TestNode.SUBNET + "11:8080/r/[1-" + n + "]");
    assertEquals(n, l4.lines().filter("200"::equals).count(), "L4: " + l4);
  }

  private int healthz() throws Exception {
    InetSocketAddress admin = node.proxy().adminAddress();
    return http.send(
            HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + admin.getPort() + "/healthz"))
                .timeout(Duration.ofSeconds(5))
                .build(),
            HttpResponse.BodyHandlers.discarding())
        .statusCode();
  }

  private static long openFds() throws IOException {
    try (Stream<Path> fds = Files.list(Path.of("/proc/self/fd"))) {
      return fds.count();
    }
  }
}
