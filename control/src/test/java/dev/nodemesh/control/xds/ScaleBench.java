package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static dev.nodemesh.control.Fixtures.service;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.store.ResourceType;
import io.envoyproxy.envoy.config.core.v3.Node;
import io.envoyproxy.envoy.service.discovery.v3.AggregatedDiscoveryServiceGrpc;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.stub.StreamObserver;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Scale run, not a CI test (it only runs with {@code -Dnodemesh.bench=true}): N simulated node
 * clients (auto-ACKing raw delta ADS streams, in this JVM, over loopback) and W workloads behind
 * W/20 Services. Prints the initial sync time, the control plane's heap after sync, and the time
 * from one Pod change to every node having received it (they ACK as they receive). Sizes: {@code
 * -Dnodemesh.bench.nodes}, {@code -Dnodemesh.bench.workloads}.
 */
@EnabledIfSystemProperty(named = "nodemesh.bench", matches = "true")
class ScaleBench {
  private static final String W = ResourceType.WORKLOAD.typeUrl();

  /** A node that ACKs everything and tells when a response carries the watched resource. */
  private static final class Node1 {
    final StreamObserver<DeltaDiscoveryRequest> requests;
    final AtomicReference<CountDownLatch> watch = new AtomicReference<>();
    final AtomicReference<String> watchedVersion = new AtomicReference<>("");

    Node1(ManagedChannel ch, String name, CountDownLatch synced) {
      requests =
          AggregatedDiscoveryServiceGrpc.newStub(ch)
              .deltaAggregatedResources(
                  new StreamObserver<>() {
                    boolean first = true;

                    @Override
                    public void onNext(DeltaDiscoveryResponse r) {
                      synchronized (Node1.this) {
                        requests.onNext(
                            DeltaDiscoveryRequest.newBuilder()
                                .setTypeUrl(r.getTypeUrl())
                                .setResponseNonce(r.getNonce())
                                .build());
                      }
                      if (first && r.getTypeUrl().equals(W)) {
                        first = false;
                        synced.countDown();
                      }
                      for (Resource res : r.getResourcesList()) {
                        if (res.getName().equals(key("w-0"))
                            && res.getVersion().equals(watchedVersion.get())) {
                          watch.get().countDown();
                        }
                      }
                    }

                    @Override
                    public void onError(Throwable t) {}

                    @Override
                    public void onCompleted() {}
                  });
      synchronized (this) {
        requests.onNext(
            DeltaDiscoveryRequest.newBuilder()
                .setNode(Node.newBuilder().setId(name))
                .setTypeUrl(W)
                .build());
      }
    }
  }

  private static long heapAfterGc() {
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  @Test
  void podChangeToEveryNode() throws Exception {
    int nodes = Integer.getInteger("nodemesh.bench.nodes", 1000);
    int workloads = Integer.getInteger("nodemesh.bench.workloads", 10000);
    TestSource source = new TestSource();
    ControlPlane cp =
        ControlPlane.start(
            source, new InetSocketAddress("127.0.0.1", 0), null, Duration.ofMillis(10));
    long heapBefore = heapAfterGc();
    source.apply(
        s -> {
          for (int i = 0; i < workloads / 20; i++) {
            s.put(
                ResourceType.SERVICE,
                key("svc-" + i),
                service(
                    "svc-" + i,
                    "10.96." + (i / 250) + "." + (i % 250 + 1),
                    Map.of("app", "a" + i)));
          }
          for (int i = 0; i < workloads; i++) {
            s.put(
                ResourceType.WORKLOAD,
                key("w-" + i),
                pod(
                    "w-" + i,
                    "node-" + (i % nodes),
                    "10." + (100 + i / 65000) + "." + (i / 250 % 250) + "." + (i % 250 + 1),
                    Map.of("app", "a" + (i % (workloads / 20)))));
          }
        });
    long heapStore = heapAfterGc();
    List<ManagedChannel> channels = new ArrayList<>();
    for (int c = 0; c < 8; c++) {
      channels.add(
          Grpc.newChannelBuilder(
                  "127.0.0.1:" + cp.address().getPort(), InsecureChannelCredentials.create())
              .maxInboundMessageSize(64 << 20)
              .build());
    }
    CountDownLatch synced = new CountDownLatch(nodes);
    List<Node1> clients = new ArrayList<>();
    long t0 = System.nanoTime();
    for (int n = 0; n < nodes; n++) {
      clients.add(new Node1(channels.get(n % channels.size()), "node-" + n, synced));
    }
    if (!synced.await(10, TimeUnit.MINUTES)) {
      throw new AssertionError("initial sync incomplete: " + synced.getCount() + " nodes left");
    }
    long syncMillis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
    Thread.sleep(500); // let the last ACKs land
    long heapSynced = heapAfterGc();

    List<Long> rounds = new ArrayList<>();
    for (int round = 1; round <= 5; round++) {
      CountDownLatch all = new CountDownLatch(nodes);
      var next = pod("w-0", "node-0", "10.100.0.1", Map.of("app", "a0", "round", "" + round));
      String version = dev.nodemesh.control.store.VersionedResource.of(key("w-0"), next).version();
      for (Node1 c : clients) {
        c.watchedVersion.set(version);
        c.watch.set(all);
      }
      long start = System.nanoTime();
      source.apply(s -> s.put(ResourceType.WORKLOAD, key("w-0"), next));
      if (!all.await(2, TimeUnit.MINUTES)) {
        throw new AssertionError("round " + round + ": " + all.getCount() + " nodes missed it");
      }
      rounds.add(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - start));
      Thread.sleep(200);
    }
    Collections.sort(rounds);
    System.out.printf(
        "SCALE nodes=%d workloads=%d services=%d: initial sync of every node %d ms;"
            + " pod change -> all nodes received (debounce 10 ms incl.) min %d / median %d / max %d"
            + " ms over 5 rounds; heap (whole JVM, after GC): empty %d MB, store %d MB,"
            + " %d nodes synced %d MB%n",
        nodes,
        workloads,
        workloads / 20,
        syncMillis,
        rounds.get(0),
        rounds.get(2),
        rounds.get(4),
        heapBefore >> 20,
        heapStore >> 20,
        nodes,
        heapSynced >> 20);
    for (ManagedChannel ch : channels) {
      ch.shutdownNow();
    }
    cp.close();
  }
}
