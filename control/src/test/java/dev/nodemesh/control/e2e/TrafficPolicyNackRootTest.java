package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.bpf.testing.RootTest;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.control.source.Source;
import dev.nodemesh.control.store.ResourceStore;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.config.NamespacedName;
import dev.nodemesh.model.config.TrafficPolicy;
import dev.nodemesh.model.kind.TrafficPolicyKind;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.Await;
import dev.nodemesh.proxy.testing.Interception;
import dev.nodemesh.proxy.testing.Mesh;
import dev.nodemesh.proxy.testing.TestNode;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.Parameter;
import org.junit.jupiter.params.ParameterizedClass;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * A malformed TrafficPolicy pushed over a live delta xDS stream, with real traffic through the node
 * proxy: the proxy NACKs the push whole (error_detail names the resource and the field), requests
 * keep being served under the previous policy (its token bucket, with the tokens it had left), and
 * the next good version is taken. Pods, Services and routes come from YAML (LocalSource); the
 * TrafficPolicies are written straight into the control plane's store, since the YAML path would
 * refuse a bad one before it ever reached a node. Both interception modes; the client is curl run
 * as a pod process ({@link TestNode#curl}), which eBPF mode intercepts as well.
 */
@RootTest
@ParameterizedClass(name = "{0}")
@EnumSource(Interception.class)
class TrafficPolicyNackRootTest {
  static final String VIP = "10.97.0.30";
  static final NamespacedName POOL = new NamespacedName("default", "pool");
  static final NamespacedName OTHER = new NamespacedName("default", "other");

  @Parameter Interception mode;
  @TempDir Path tmp;

  @Test
  void aBadTrafficPolicyIsNackedWholeTheOldOneKeepsWorkingAndTheNextGoodOneIsTaken()
      throws Exception {
    try (Interception.Setup setup = mode.setUp();
        TestNode node = TestNode.create(tmp)) {
      node.addPod("client", 10);
      node.addPod("pool-1", 11);
      node.addPod("pool-2", 12);
      node.serveHttp("pool-1", 8080);
      node.serveHttp("pool-2", 8080);
      node.writeConfig(
          "pods.yaml",
          Mesh.httpPod("client", 10, "client")
              + Mesh.httpPod("pool-1", 11, "pool")
              + Mesh.httpPod("pool-2", 12, "pool"));
      node.writeConfig(
          "services.yaml", Mesh.POOL_SERVICE + "---\n" + service("other", "10.97.0.31"));
      node.writeConfig("routes.yaml", Mesh.POOL_ROUTE);
      StoreSource source = new StoreSource(new LocalSource(node.configDir(), 50));
      ControlPlane cp =
          ControlPlane.start(
              source, new InetSocketAddress("127.0.0.1", 0), null, Duration.ofMillis(20));
      try {
        node.startProxy(
            node.proxyConfig()
                .configDir(null)
                .interception(setup.nextNode())
                .xdsTarget("127.0.0.1:" + cp.address().getPort())
                .build());
        SnapshotHolder snapshots = node.proxy().dataPlane().snapshots();
        Await.waitFor(() -> snapshots.current().workloads().size() == 3);
        for (String p : List.of("client", "pool-1", "pool-2")) {
          node.enrol(p);
        }

        // v1: a bucket of 10 tokens that never refills (within the test).
        source.apply(s -> s.put(ResourceType.TRAFFIC_POLICY, "default/pool", policy("pool", 10)));
        Await.waitFor(() -> snapshots.current().trafficPolicy(POOL) != null);
        TrafficPolicy v1 = snapshots.current().trafficPolicy(POOL);
        assertEquals(10, v1.rateLimit().maxTokens());
        assertEquals(List.of("200", "200", "200", "200"), codes(node, 4));
        long version = snapshots.current().version();

        // v2 is malformed (an empty bucket), pushed with a good policy for another Service.
        source.apply(
            s -> {
              s.put(ResourceType.TRAFFIC_POLICY, "default/pool", policy("pool", 0));
              s.put(ResourceType.TRAFFIC_POLICY, "default/other", policy("other", 50));
            });
        Await.waitFor(() -> cp.ads().lastNack("test-node") != null);
        String nack = cp.ads().lastNack("test-node");
        assertTrue(nack.contains("TrafficPolicy default/pool"), nack);
        assertTrue(nack.contains("rate_limit"), nack);
        assertTrue(nack.contains("must be above 0"), nack);
        // Nothing of that push applied, not even the good policy that came with it.
        assertEquals(version, snapshots.current().version());
        assertEquals(v1, snapshots.current().trafficPolicy(POOL));
        assertNull(snapshots.current().trafficPolicy(OTHER));
        // Traffic still flows under v1, with the 6 tokens it had left: 6 served, then 429.
        List<String> codes = codes(node, 10);
        assertEquals(6, codes.stream().filter("200"::equals).count(), codes.toString());
        assertEquals(4, codes.stream().filter("429"::equals).count(), codes.toString());

        // v3, good again: taken (with the other Service's policy that waited in the same type).
        source.apply(s -> s.put(ResourceType.TRAFFIC_POLICY, "default/pool", policy("pool", 30)));
        Await.waitFor(() -> snapshots.current().version() > version);
        Await.waitFor(() -> snapshots.current().trafficPolicy(POOL).rateLimit().maxTokens() == 30);
        assertNotNull(snapshots.current().trafficPolicy(OTHER));
        // The new policy's own bucket: requests pass again.
        assertEquals(List.of("200", "200", "200"), codes(node, 3));
      } finally {
        node.stopProxy(); // before the control plane, which it would keep reconnecting to
        cp.close();
      }
    }
  }

  private static dev.nodemesh.api.config.v1.TrafficPolicy policy(String service, long tokens) {
    var good =
        TrafficPolicyKind.encode(
            new TrafficPolicy(
                service,
                "default",
                service,
                TrafficPolicy.LoadBalancer.DEFAULT,
                null,
                null,
                TrafficPolicy.Retry.DEFAULT,
                new TrafficPolicy.RateLimit(
                    Math.max(tokens, 1), 1, Duration.ofHours(1), false, 1000)));
    return tokens > 0
        ? good
        : good.toBuilder().setRateLimit(good.getRateLimit().toBuilder().setMaxTokens(0)).build();
  }

  private static List<String> codes(TestNode node, int n) throws Exception {
    return node.curl(
            "client",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}\\n",
            "http://" + VIP + "/plain/[1-" + n + "]")
        .lines()
        .toList();
  }

  /**
   * LocalSource for the YAML, plus writes the test makes to the same store on the control plane's
   * executor (LocalSource publishes only when a file changes, and no file changes after the start).
   */
  static final class StoreSource implements Source {
    private final LocalSource files;
    private volatile ResourceStore store;
    private volatile Executor executor;

    StoreSource(LocalSource files) {
      this.files = files;
    }

    @Override
    public void start(ResourceStore store, Executor executor) throws Exception {
      this.store = store;
      this.executor = executor;
      files.start(store, executor);
    }

    void apply(Consumer<ResourceStore> change) throws Exception {
      CompletableFuture<Void> done = new CompletableFuture<>();
      executor.execute(
          () -> {
            change.accept(store);
            done.complete(null);
          });
      done.get(10, TimeUnit.SECONDS);
    }

    @Override
    public boolean ready() {
      return files.ready();
    }

    @Override
    public String describe() {
      return "test+" + files.describe();
    }

    @Override
    public void close() {
      files.close();
    }
  }

  private static String service(String name, String vip) {
    return """
        apiVersion: v1
        kind: Service
        metadata: {name: %s, namespace: default}
        spec:
          clusterIP: %s
          selector: {app: pool}
          ports: [{name: http, port: 80, targetPort: http, appProtocol: http}]
        """
        .formatted(name, vip);
  }
}
