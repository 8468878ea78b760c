package dev.nodemesh.proxy.xds;

import static dev.nodemesh.proxy.testing.FakeAdsServer.webWorkload;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.kind.ResourceKind;
import dev.nodemesh.model.kind.ResourceKinds;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.testing.FakeAdsServer;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryRequest;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Version skew: a fake control plane that never answers one subscribed kind (HttpFault, as an older
 * control plane that does not know it). Without a bound the proxy would wait for ever for its first
 * config; with the initial fetch timeout the kinds that arrived are applied, the missing one empty,
 * and the listener hears which type URLs were missing. Time is the test's: the client's executor
 * holds every delayed task instead of running it, and the test fires the timeout itself.
 */
class XdsClientInitialFetchTimeoutTest {
  private static final Duration TIMEOUT = Duration.ofSeconds(15);

  /** One single-thread executor whose delayed tasks wait for the test ({@link #fire}). */
  private static final class HeldTimers extends ScheduledThreadPoolExecutor {
    record Timer(Runnable task, long delayNanos, ScheduledFuture<?> future) {}

    final BlockingQueue<Timer> timers = new LinkedBlockingQueue<>();

    HeldTimers() {
      super(1);
    }

    @Override
    public ScheduledFuture<?> schedule(Runnable task, long delay, TimeUnit unit) {
      if (delay <= 0) {
        return super.schedule(task, delay, unit); // execute() comes here
      }
      // Really scheduled a day out (never, in a test), so cancel() works as in production.
      ScheduledFuture<?> f = super.schedule(() -> {}, 1, TimeUnit.DAYS);
      timers.add(new Timer(task, unit.toNanos(delay), f));
      return f;
    }

    /** Runs {@code t} on the executor now, unless it was cancelled, and waits for it. */
    void fire(Timer t) throws InterruptedException {
      CountDownLatch done = new CountDownLatch(1);
      execute(
          () -> {
            if (!t.future().isCancelled()) {
              t.task().run();
            }
            done.countDown();
          });
      assertTrue(done.await(10, TimeUnit.SECONDS));
    }
  }

  private final BlockingQueue<List<String>> timedOut = new LinkedBlockingQueue<>();
  private final List<ConfigSnapshot> accepted = new ArrayList<>();
  private final SnapshotHolder snapshots = new SnapshotHolder();
  private final HeldTimers executor = new HeldTimers();
  private FakeAdsServer ads;
  private XdsClient client;

  @BeforeEach
  void start() throws Exception {
    ads = FakeAdsServer.start();
  }

  private void startClient(Duration timeout) {
    client =
        new XdsClient(
            ads.channel(),
            "n1",
            snapshots,
            executor,
            new Backoff(TimeUnit.SECONDS.toNanos(1), TimeUnit.SECONDS.toNanos(1), () -> 0.5),
            new XdsClient.Listener() {
              @Override
              public void accepted(ConfigSnapshot s) {
                accepted.add(s);
              }

              @Override
              public void initialFetchTimedOut(List<String> missingTypeUrls) {
                timedOut.add(missingTypeUrls);
              }
            },
            timeout);
    client.start();
  }

  @AfterEach
  void stop() throws Exception {
    if (client != null) {
      client.close();
    }
    ads.close();
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
  }

  /** Sends one response and asserts that the client ACKs it. */
  private void send(
      StreamObserver<DeltaDiscoveryResponse> out, ResourceKind<?, ?> kind, Resource... resources)
      throws InterruptedException {
    DeltaDiscoveryRequest answer = ads.respond(out, kind, resources);
    assertFalse(answer.hasErrorDetail(), answer.toString());
  }

  /** Every kind but {@code missing} answers (workloads with one). */
  private void answerAllBut(
      StreamObserver<DeltaDiscoveryResponse> out, @Nullable ResourceKind<?, ?> missing)
      throws Exception {
    for (ResourceKind<?, ?> k : ResourceKinds.ALL) {
      if (k == missing) {
        continue;
      }
      if (k == ResourceKinds.WORKLOAD) {
        send(out, k, webWorkload());
      } else {
        send(out, k);
      }
    }
  }

  private HeldTimers.Timer initialFetchTimer() throws InterruptedException {
    HeldTimers.Timer t = executor.timers.poll(10, TimeUnit.SECONDS);
    assertNotNull(t, "the initial fetch timer is set at the first connect");
    assertEquals(TIMEOUT.toNanos(), t.delayNanos());
    return t;
  }

  @Test
  void aKindTheControlPlaneNeverServesIsAppliedEmptyOnceTheTimeoutExpires() throws Exception {
    startClient(TIMEOUT);
    StreamObserver<DeltaDiscoveryResponse> out = ads.awaitSubscriptions();
    HeldTimers.Timer timer = initialFetchTimer();
    answerAllBut(out, ResourceKinds.HTTP_FAULT);
    assertEquals(0, snapshots.current().version(), "still waiting for HttpFault");
    assertFalse(client.initialSyncDone());

    executor.fire(timer);
    ConfigSnapshot s = snapshots.current();
    assertEquals(1, s.version(), "what arrived is in force");
    assertEquals(List.of("web"), s.workloads().stream().map(Workload::name).toList());
    assertTrue(ResourceKinds.HTTP_FAULT.in(s).isEmpty());
    assertTrue(client.initialSyncDone());
    assertEquals(List.of(ResourceKinds.HTTP_FAULT.typeUrl()), timedOut.poll());
    assertEquals(1, accepted.size(), "and handed on (saved) once");

    // After that each response is applied on its own, as usual.
    send(out, ResourceKinds.SERVICE);
    assertEquals(1, snapshots.current().version(), "an empty answer changes nothing");
    assertTrue(timedOut.isEmpty());
  }

  @Test
  void everyKindInTimeCancelsTheTimerAndReportsNothingMissing() throws Exception {
    startClient(TIMEOUT);
    StreamObserver<DeltaDiscoveryResponse> out = ads.awaitSubscriptions();
    HeldTimers.Timer timer = initialFetchTimer();
    answerAllBut(out, null);
    assertEquals(1, snapshots.current().version());
    assertTrue(timer.future().isCancelled(), "the timer is cancelled with the first config");
    executor.fire(timer);
    assertEquals(1, snapshots.current().version());
    assertTrue(timedOut.isEmpty());
  }

  @Test
  void nothingArrivedByTheTimeoutAppliesNothingThenTheFirstResponseAtOnce() throws Exception {
    startClient(TIMEOUT);
    StreamObserver<DeltaDiscoveryResponse> out = ads.awaitSubscriptions();
    executor.fire(initialFetchTimer());
    assertEquals(0, snapshots.current().version(), "nothing proves the control plane answers");
    assertFalse(client.initialSyncDone());
    assertTrue(timedOut.isEmpty());

    send(out, ResourceKinds.WORKLOAD, webWorkload());
    assertEquals(1, snapshots.current().version());
    assertTrue(client.initialSyncDone());
    List<String> missing = timedOut.poll();
    assertNotNull(missing);
    assertEquals(ResourceKinds.ALL.size() - 1, missing.size(), missing.toString());
    assertFalse(missing.contains(ResourceKinds.WORKLOAD.typeUrl()));
  }

  @Test
  void aZeroTimeoutWaitsForEver() throws Exception {
    startClient(Duration.ZERO);
    StreamObserver<DeltaDiscoveryResponse> out = ads.awaitSubscriptions();
    answerAllBut(out, ResourceKinds.HTTP_FAULT);
    assertNull(executor.timers.poll(), "no timer");
    assertEquals(0, snapshots.current().version());
    send(out, ResourceKinds.HTTP_FAULT);
    assertEquals(1, snapshots.current().version());
  }
}
