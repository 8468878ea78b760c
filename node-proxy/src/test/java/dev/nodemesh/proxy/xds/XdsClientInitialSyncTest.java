package dev.nodemesh.proxy.xds;

import static dev.nodemesh.proxy.testing.FakeAdsServer.webWorkload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.Any;
import dev.nodemesh.api.config.v1.Selector;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.FakeAdsServer;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.stub.StreamObserver;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The first config is applied whole: a fake control plane answers one kind at a time, and the
 * proxy's snapshot stays as it was (nothing in force) until every subscribed kind has answered,
 * then holds all of them at once. Responses arrive on an in-process gRPC stream; the client runs on
 * its own single thread, and every step waits for the client's ACK or NACK, which it sends only
 * after it has handled the response.
 */
class XdsClientInitialSyncTest {
  private final BlockingQueue<Map<String, List<Resource>>> saved = new LinkedBlockingQueue<>();
  private final SnapshotHolder snapshots = new SnapshotHolder();
  private final ScheduledExecutorService executor = Executors.newSingleThreadScheduledExecutor();
  private FakeAdsServer ads;
  private XdsClient client;

  @BeforeEach
  void start() throws Exception {
    ads = FakeAdsServer.start();
    client =
        new XdsClient(
            ads.channel(),
            "n1",
            snapshots,
            executor,
            new Backoff(TimeUnit.SECONDS.toNanos(1), TimeUnit.SECONDS.toNanos(1), () -> 0.5),
            new XdsClient.Listener() {
              @Override
              public void accepted(ConfigSnapshot s, Map<String, List<Resource>> resources) {
                saved.add(resources);
              }
            });
    client.start();
  }

  @AfterEach
  void stop() throws Exception {
    client.close();
    ads.close();
    // Last: the stream's end still hops onto the executor.
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
  }

  private static Resource denyAll() {
    return Resource.newBuilder()
        .setName("default/deny-all")
        .setVersion("1")
        .setResource(
            Any.pack(
                dev.nodemesh.api.config.v1.AuthorizationPolicy.newBuilder()
                    .setName("deny-all")
                    .setNamespace("default")
                    .setSelector(Selector.getDefaultInstance())
                    .setAction(dev.nodemesh.api.config.v1.AuthorizationPolicy.Action.ALLOW)
                    .build()))
        .build();
  }

  @Test
  void nothingIsInForceUntilEveryKindHasAnsweredThenAllOfItAtOnce() throws Exception {
    StreamObserver<DeltaDiscoveryResponse> out = ads.awaitSubscriptions();
    // Services' workloads first, then the policies: neither may serve without the other.
    assertFalse(ads.respond(out, ResourceKinds.WORKLOAD, webWorkload()).hasErrorDetail());
    assertEquals(0, snapshots.current().version(), "workloads alone are not in force");
    assertFalse(ads.respond(out, ResourceKinds.AUTHORIZATION_POLICY, denyAll()).hasErrorDetail());
    assertEquals(0, snapshots.current().version());
    // A bad response during the initial sync is NACKed and changes nothing.
    Resource bad =
        Resource.newBuilder()
            .setName("default/x")
            .setResource(Any.pack(dev.nodemesh.api.config.v1.Service.getDefaultInstance()))
            .build();
    assertTrue(ads.respond(out, ResourceKinds.SERVICE, bad).hasErrorDetail());
    List<ResourceKind<?, ?>> rest =
        ResourceKinds.ALL.stream()
            .filter(k -> k != ResourceKinds.WORKLOAD && k != ResourceKinds.AUTHORIZATION_POLICY)
            .toList();
    for (int i = 0; i < rest.size() - 1; i++) {
      assertFalse(ads.respond(out, rest.get(i)).hasErrorDetail());
      assertEquals(0, snapshots.current().version(), "still waiting after " + rest.get(i));
      assertFalse(client.initialSyncDone());
    }
    assertTrue(saved.isEmpty(), "nothing accepted, nothing saved");

    assertFalse(ads.respond(out, rest.get(rest.size() - 1)).hasErrorDetail());
    ConfigSnapshot s = snapshots.current();
    assertEquals(1, s.version());
    assertTrue(client.initialSyncDone());
    assertEquals(List.of("web"), s.workloads().stream().map(Workload::name).toList());
    assertEquals(1, s.authorizationPolicies().size(), "the workloads came with their policy");
    // The listener hears of it after the ACK is on its way.
    Map<String, List<Resource>> first = saved.poll(10, TimeUnit.SECONDS);
    assertNotNull(first, "the accepted config is handed over with its resources");
    assertEquals(List.of(webWorkload()), first.get(ResourceKinds.WORKLOAD.typeUrl()));
    assertEquals(List.of(denyAll()), first.get(ResourceKinds.AUTHORIZATION_POLICY.typeUrl()));
    assertEquals(List.of(), first.get(ResourceKinds.HTTP_FAULT.typeUrl()));

    // From then on, each response is applied by itself; one that changes nothing changes nothing.
    assertFalse(ads.respond(out, ResourceKinds.SERVICE).hasErrorDetail());
    assertEquals(1, snapshots.current().version());
    ads.respond(
        out,
        DeltaDiscoveryResponse.newBuilder()
            .setTypeUrl(ResourceKinds.AUTHORIZATION_POLICY.typeUrl())
            .addRemovedResources("default/deny-all"));
    assertEquals(2, snapshots.current().version());
    assertEquals(List.of(), snapshots.current().authorizationPolicies());
  }
}
