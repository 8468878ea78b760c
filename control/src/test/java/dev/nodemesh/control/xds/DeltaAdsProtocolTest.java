package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static dev.nodemesh.control.Fixtures.service;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.store.ResourceType;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The delta ADS protocol against the real server on loopback, with a client that does exactly what
 * each test says: what is sent on subscribe, after a change, on removal, after a NACK, on reconnect
 * with known versions, and to a slow node.
 */
class DeltaAdsProtocolTest {
  private static final String W = ResourceType.WORKLOAD.typeUrl();
  private static final String S = ResourceType.SERVICE.typeUrl();

  private final TestSource source = new TestSource();
  private ControlPlane cp;
  private ManagedChannel channel;

  @BeforeEach
  void start() throws Exception {
    cp =
        ControlPlane.start(
            source, new InetSocketAddress("127.0.0.1", 0), null, Duration.ofMillis(20));
    channel =
        Grpc.newChannelBuilder(
                "127.0.0.1:" + cp.address().getPort(), InsecureChannelCredentials.create())
            .build();
    source.apply(
        s -> {
          s.put(
              ResourceType.SERVICE, key("web"), service("web", "10.96.0.1", Map.of("app", "web")));
          s.put(ResourceType.WORKLOAD, key("web-1"), pod("web-1", "n1", "10.0.1.1", web()));
          s.put(ResourceType.WORKLOAD, key("web-2"), pod("web-2", "n2", "10.0.2.1", web()));
          s.put(
              ResourceType.WORKLOAD, key("client-1"), pod("client-1", "n1", "10.0.1.2", Map.of()));
        });
  }

  @AfterEach
  void stop() throws Exception {
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    cp.close();
  }

  private static Map<String, String> web() {
    return Map.of("app", "web");
  }

  private static Set<String> names(DeltaDiscoveryResponse r) {
    return new TreeSet<>(RawAdsClient.versions(r).keySet());
  }

  /** Subscribes to workloads, checks and ACKs the initial response, and returns it. */
  private static DeltaDiscoveryResponse sync(RawAdsClient c, Set<String> expected)
      throws InterruptedException {
    c.subscribe(W, Map.of());
    DeltaDiscoveryResponse r = c.next();
    assertEquals(W, r.getTypeUrl());
    assertEquals(expected, names(r));
    assertTrue(r.getRemovedResourcesList().isEmpty());
    c.ack(r);
    return r;
  }

  private void changeLabel(String name, String node, String ip, String value) throws Exception {
    Map<String, String> labels = new HashMap<>(web());
    labels.put("rev", value);
    long revision =
        source.apply(s -> s.put(ResourceType.WORKLOAD, key(name), pod(name, node, ip, labels)));
    // Wait for the debounced push, so a client that connects next sees the change.
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (cp.pushedRevision() < revision) {
      assertTrue(System.nanoTime() < deadline, "push of revision " + revision);
      Thread.sleep(5);
    }
  }

  @Test
  void initialSyncThenOnePodChangeIsOneSmallUpdate() throws Exception {
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      sync(c, Set.of(key("web-1"), key("web-2"), key("client-1")));
      c.subscribe(S, Map.of());
      DeltaDiscoveryResponse services = c.next();
      assertEquals(S, services.getTypeUrl());
      assertEquals(Set.of(key("web")), names(services));
      c.ack(services);

      changeLabel("web-2", "n2", "10.0.2.1", "2");
      DeltaDiscoveryResponse r = c.next();
      assertEquals(W, r.getTypeUrl());
      assertEquals(Set.of(key("web-2")), names(r), "only the changed pod is sent");
      assertEquals(
          "2", r.getResources(0).getResource().unpack(Workload.class).getLabelsOrThrow("rev"));
      c.ack(r);
      c.expectNothing(300); // no Service update, no resend
    }
  }

  @Test
  void aTypeWithNothingInItIsAnsweredOnceEmptySoTheNodesInitialFetchEnds() throws Exception {
    String faults = ResourceType.HTTP_FAULT.typeUrl();
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      c.subscribe(faults, Map.of());
      DeltaDiscoveryResponse r = c.next();
      assertEquals(faults, r.getTypeUrl());
      assertEquals(0, r.getResourcesCount());
      assertEquals(0, r.getRemovedResourcesCount());
      c.ack(r);
      c.expectNothing(300); // once: the ACKed empty view is what the node holds
    }
  }

  @Test
  void removalIsSentAsARemovedName() throws Exception {
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      sync(c, Set.of(key("web-1"), key("web-2"), key("client-1")));
      source.apply(s -> s.remove(ResourceType.WORKLOAD, key("web-2")));
      DeltaDiscoveryResponse r = c.next();
      assertEquals(0, r.getResourcesCount());
      assertEquals(List.of(key("web-2")), r.getRemovedResourcesList());
    }
  }

  @Test
  void nackIsRecordedNotResentAndTheNextChangeCarriesWhatTheNodeStillLacks() throws Exception {
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      sync(c, Set.of(key("web-1"), key("web-2"), key("client-1")));
      changeLabel("web-2", "n2", "10.0.2.1", "bad");
      DeltaDiscoveryResponse rejected = c.next();
      c.nack(rejected, "Workload default/web-2: labels: no");
      c.expectNothing(300);
      assertEquals("Workload default/web-2: labels: no", cp.ads().lastNack("n1"));
      assertEquals(1.0, cp.ads().metrics().nacks(ResourceType.WORKLOAD));

      changeLabel("web-1", "n1", "10.0.1.1", "ok");
      DeltaDiscoveryResponse r = c.next();
      // The node applied nothing of the NACKed response, so web-2 comes again with web-1.
      assertEquals(Set.of(key("web-1"), key("web-2")), names(r));
      c.ack(r);
      c.expectNothing(200);
    }
  }

  @Test
  void reconnectWithKnownVersionsGetsOnlyTheDifference() throws Exception {
    Map<String, String> known;
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      known = RawAdsClient.versions(sync(c, Set.of(key("web-1"), key("web-2"), key("client-1"))));
    }
    // Nothing changed: the reconnecting node is sent nothing at all.
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      c.subscribe(W, known);
      c.expectNothing(300);
    }
    changeLabel("web-1", "n1", "10.0.1.1", "3");
    Map<String, String> claimed = new HashMap<>(known);
    claimed.put(key("gone"), "0123456789abcdef");
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      c.subscribe(W, claimed);
      DeltaDiscoveryResponse r = c.next();
      assertEquals(Set.of(key("web-1")), names(r));
      assertEquals(List.of(key("gone")), r.getRemovedResourcesList());
    }
  }

  @Test
  void slowNodeGetsOneCoalescedUpdateAndDoesNotHoldTheFastOne() throws Exception {
    try (RawAdsClient slow = new RawAdsClient(channel, "n2");
        RawAdsClient fast = new RawAdsClient(channel, "n1")) {
      slow.subscribe(W, Map.of());
      DeltaDiscoveryResponse slowFirst = slow.next(); // and never ACKed, for now
      sync(fast, Set.of(key("web-1"), key("web-2"), key("client-1")));
      for (int i = 1; i <= 5; i++) {
        changeLabel("web-1", "n1", "10.0.1.1", Integer.toString(i));
        DeltaDiscoveryResponse r = fast.next();
        assertEquals(Set.of(key("web-1")), names(r));
        assertEquals(
            Integer.toString(i),
            r.getResources(0).getResource().unpack(Workload.class).getLabelsOrThrow("rev"));
        fast.ack(r);
      }
      slow.expectNothing(200); // one response in flight per type: nothing queues up behind it
      slow.ack(slowFirst);
      DeltaDiscoveryResponse caughtUp = slow.next();
      assertEquals(Set.of(key("web-1")), names(caughtUp), "five changes, one update");
      assertEquals(
          "5",
          caughtUp.getResources(0).getResource().unpack(Workload.class).getLabelsOrThrow("rev"));
    }
  }

  @Test
  void aBurstOfChangesIsOnePush() throws Exception {
    TestSource burstSource = new TestSource();
    ControlPlane slowDebounce =
        ControlPlane.start(
            burstSource, new InetSocketAddress("127.0.0.1", 0), null, Duration.ofSeconds(2));
    ManagedChannel ch =
        Grpc.newChannelBuilder(
                "127.0.0.1:" + slowDebounce.address().getPort(),
                InsecureChannelCredentials.create())
            .build();
    try (RawAdsClient c = new RawAdsClient(ch, "n1")) {
      burstSource.apply(s -> {});
      c.subscribe(W, Map.of());
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      while (slowDebounce.pushedRevision() < 0) { // the first (empty) push
        assertTrue(System.nanoTime() < deadline);
        Thread.sleep(5);
      }
      // A node that claimed nothing of a type with nothing in it gets one empty answer, so its
      // initial fetch ends.
      DeltaDiscoveryResponse first = c.next();
      assertEquals(0, first.getResourcesCount());
      assertEquals(0, first.getRemovedResourcesCount());
      c.ack(first);
      // Ten in-memory changes take microseconds; the 2 s debounce makes them one push even on a
      // loaded machine, without the test timing anything itself.
      for (int i = 0; i < 10; i++) {
        String name = "burst-" + i;
        String ip = "10.0.9." + (10 + i);
        burstSource.apply(s -> s.put(ResourceType.WORKLOAD, key(name), pod(name, "n1", ip, web())));
      }
      DeltaDiscoveryResponse r = c.next();
      assertEquals(10, r.getResourcesCount(), "ten changes, one response");
      // The push is counted after the response is handed to gRPC: wait for the count, bounded.
      long counted = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      // Two pushes: the empty first answer, and the burst's one.
      while (slowDebounce.ads().metrics().pushes(ResourceType.WORKLOAD) < 2.0
          && System.nanoTime() < counted) {
        Thread.sleep(5);
      }
      assertEquals(2.0, slowDebounce.ads().metrics().pushes(ResourceType.WORKLOAD));
    } finally {
      ch.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      slowDebounce.close();
    }
  }

  @Test
  void twoNodesGetDifferentViews() throws Exception {
    try (RawAdsClient n1 = new RawAdsClient(channel, "n1");
        RawAdsClient n2 = new RawAdsClient(channel, "n2")) {
      sync(n1, Set.of(key("web-1"), key("web-2"), key("client-1")));
      sync(n2, Set.of(key("web-1"), key("web-2")));
      assertEquals(2, cp.ads().connectedNodes().size());
      // A pod that only n1 needs changes: n2 hears nothing.
      source.apply(
          s ->
              s.put(
                  ResourceType.WORKLOAD,
                  key("client-1"),
                  pod("client-1", "n1", "10.0.1.2", Map.of("x", "y"))));
      assertEquals(Set.of(key("client-1")), names(n1.next()));
      n2.expectNothing(300);
    }
  }
}
