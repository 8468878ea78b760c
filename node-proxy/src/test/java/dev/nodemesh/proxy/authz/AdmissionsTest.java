package dev.nodemesh.proxy.authz;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.config.AuthorizationPolicy;
import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.model.config.Workload;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.metrics.ProxyMetrics;
import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelInitializer;
import io.netty.channel.DefaultEventLoopGroup;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.channel.local.LocalAddress;
import io.netty.channel.local.LocalChannel;
import io.netty.channel.local.LocalServerChannel;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/**
 * The registry of admitted connections and its re-check after a swap, on {@link EmbeddedChannel}s
 * (the re-check runs when the test runs the channel's pending tasks) and, where several channels
 * must share one loop, local channels on a {@link DefaultEventLoopGroup}.
 */
class AdmissionsTest {
  private static final String TD = "cluster.local";
  private static final SpiffeId CLIENT = new SpiffeId(TD, "default", "client-sa");
  private static final Workload ECHO = workload("echo-1", "10.214.0.11", Map.of("app", "echo"));
  private static final ConnectionSource CALLER =
      new ConnectionSource(CLIENT, ip("10.214.0.10"), true);

  private final ProxyMetrics metrics = new ProxyMetrics("test-node");
  private final SnapshotHolder snapshots = new SnapshotHolder(snapshot(1));
  private final Admissions admissions = new Admissions(snapshots, metrics);
  private final PolicyAuthorizer policy = new PolicyAuthorizer();

  private static InetAddress ip(String s) {
    try {
      return InetAddress.getByName(s);
    } catch (java.net.UnknownHostException e) {
      throw new IllegalArgumentException(e);
    }
  }

  private static Workload workload(String name, String ip, Map<String, String> labels) {
    return new Workload(
        "uid-" + name, name, "default", List.of(ip(ip)), labels, "default", "", Map.of());
  }

  private static ConfigSnapshot snapshot(long version, AuthorizationPolicy... policies) {
    return snapshot(version, ECHO, policies);
  }

  private static ConfigSnapshot snapshot(
      long version, Workload echo, AuthorizationPolicy... policies) {
    return new ConfigSnapshot(version, List.of(echo), List.of(), List.of(policies), List.of());
  }

  /** A DENY of the client's principal for every workload in {@code default}. */
  private static AuthorizationPolicy denyClient() {
    return new AuthorizationPolicy(
        "deny-client",
        "default",
        Map.of(),
        AuthorizationPolicy.Action.DENY,
        List.of(
            new AuthorizationPolicy.Rule(
                List.of(
                    new AuthorizationPolicy.Source(
                        List.of(CLIENT.toString()),
                        List.of(),
                        List.of(),
                        List.of(),
                        List.of(),
                        List.of())),
                List.of())));
  }

  /** A DENY of everyone for workloads labelled {@code app: locked}. */
  private static AuthorizationPolicy denyLocked() {
    return new AuthorizationPolicy(
        "deny-locked",
        "default",
        Map.of("app", "locked"),
        AuthorizationPolicy.Action.DENY,
        List.of(new AuthorizationPolicy.Rule(List.of(), List.of())));
  }

  private Admission admissionOf(Authorizer authorizer) {
    return Admission.connection(
        authorizer, false, "source", snapshots.current(), ECHO, 9000, CALLER, null);
  }

  private double changed(String reporter, String workload) {
    return metrics
        .policyDenials(reporter, CLIENT.toString(), workload, "default", Admissions.POLICY_CHANGED)
        .count();
  }

  @Test
  void aConnectionTheNewPolicyDeniesIsResetCountedAndForgotten() {
    EmbeddedChannel ch = new EmbeddedChannel();
    admissions.admit(ch, admissionOf(policy));
    assertEquals(1, admissions.size());

    snapshots.swap(snapshot(2, denyClient()));
    assertTrue(ch.isOpen(), "the re-check runs on the channel's loop, not the swapping thread");
    ch.runPendingTasks();

    assertFalse(ch.isOpen());
    assertEquals(1.0, changed("source", "echo-1"));
    Decision d = ch.attr(PolicyEnforcement.DECISION).get();
    assertEquals("default/deny-client", d.policy());
    assertEquals(PolicyAuthorizer.DENIED_BY_POLICY, d.reason());
    assertEquals(0, admissions.size(), "a closed connection leaves nothing registered");
    ch.finishAndReleaseAll();
  }

  @Test
  void aConnectionTheNewPolicyStillAllowsIsUntouchedAndKeepsCarryingData() {
    EmbeddedChannel ch = new EmbeddedChannel(new ChannelInboundHandlerAdapter());
    admissions.admit(ch, admissionOf(policy));
    AuthorizationPolicy denyOthers =
        new AuthorizationPolicy(
            "deny-others",
            "default",
            Map.of(),
            AuthorizationPolicy.Action.DENY,
            List.of(
                new AuthorizationPolicy.Rule(
                    List.of(
                        new AuthorizationPolicy.Source(
                            List.of("*/sa/other"),
                            List.of(),
                            List.of(),
                            List.of(),
                            List.of(),
                            List.of())),
                    List.of())));

    snapshots.swap(snapshot(2, denyOthers));
    ch.runPendingTasks();

    assertTrue(ch.isActive());
    assertEquals(0.0, changed("source", "echo-1"));
    assertTrue(ch.writeInbound(Unpooled.copiedBuffer("still here", StandardCharsets.UTF_8)));
    ByteBuf read = ch.readInbound();
    assertEquals("still here", read.toString(StandardCharsets.UTF_8));
    read.release();
    assertEquals(1, admissions.size());
    ch.close();
    assertEquals(0, admissions.size());
    ch.finishAndReleaseAll();
  }

  @Test
  void closedConnectionsLeaveTheRegistryAndAreNeverChecked() {
    AtomicInteger checks = new AtomicInteger();
    Authorizer counting =
        (s, d, p, src) -> {
          checks.incrementAndGet();
          return new Decision(false, "x", "denied_by_policy");
        };
    List<EmbeddedChannel> channels = new ArrayList<>();
    for (int i = 0; i < 5; i++) {
      EmbeddedChannel ch = new EmbeddedChannel();
      admissions.admit(ch, admissionOf(counting));
      channels.add(ch);
    }
    assertEquals(5, admissions.size());
    channels.forEach(EmbeddedChannel::close);
    assertEquals(0, admissions.size());

    snapshots.swap(snapshot(2));
    channels.forEach(EmbeddedChannel::runPendingTasks);
    assertEquals(0, checks.get());
    assertEquals(0.0, changed("source", "echo-1"));

    // Admitted after it closed (a close that won a race): removed at once all the same.
    EmbeddedChannel late = new EmbeddedChannel();
    late.close();
    admissions.admit(late, admissionOf(counting));
    assertEquals(0, admissions.size());
    channels.forEach(EmbeddedChannel::finishAndReleaseAll);
    late.finishAndReleaseAll();
  }

  @Test
  void aForgottenAdmissionIsNotCheckedAndALaterOneReplacesIt() {
    AtomicInteger first = new AtomicInteger();
    AtomicInteger second = new AtomicInteger();
    EmbeddedChannel ch = new EmbeddedChannel();
    admissions.admit(
        ch,
        admissionOf(
            (s, d, p, src) -> {
              first.incrementAndGet();
              return new Decision(false, "x", "denied_by_policy");
            }));
    admissions.forget(ch);
    snapshots.swap(snapshot(2));
    ch.runPendingTasks();
    assertTrue(ch.isOpen());
    assertEquals(0, first.get());

    admissions.admit(
        ch,
        admissionOf(
            (s, d, p, src) -> {
              second.incrementAndGet();
              return new Decision(true, "default-allow", "allowed");
            }));
    snapshots.swap(snapshot(3));
    ch.runPendingTasks();
    assertTrue(ch.isOpen());
    assertEquals(0, first.get());
    assertEquals(1, second.get());
    ch.finishAndReleaseAll();
  }

  @Test
  void quickSwapsCostOnePassAgainstTheNewestSnapshot() {
    Queue<Long> seen = new ConcurrentLinkedQueue<>();
    EmbeddedChannel ch = new EmbeddedChannel();
    admissions.admit(
        ch,
        admissionOf(
            (s, d, p, src) -> {
              seen.add(s.version());
              return new Decision(true, "default-allow", "allowed");
            }));
    snapshots.swap(snapshot(2));
    snapshots.swap(snapshot(3));
    snapshots.swap(snapshot(4));
    ch.runPendingTasks();
    assertEquals(List.of(4L), List.copyOf(seen));

    // The same snapshot again is no change; an admission already decided on it is not re-asked.
    snapshots.swap(snapshots.current());
    ch.runPendingTasks();
    assertEquals(List.of(4L), List.copyOf(seen));
    ch.finishAndReleaseAll();
  }

  @Test
  void anAdmissionDecidedOnAnOlderSnapshotIsCheckedAgainstTheCurrentOne() {
    ConfigSnapshot old = snapshots.current();
    snapshots.swap(snapshot(2, denyClient()));
    EmbeddedChannel ch = new EmbeddedChannel();
    // E.g. the L4 fallback after the L7 sniff, routed and checked by the snapshot at accept.
    admissions.admit(
        ch, Admission.connection(policy, false, "source", old, ECHO, 9000, CALLER, null));
    ch.runPendingTasks();
    assertFalse(ch.isOpen());
    assertEquals(1.0, changed("source", "echo-1"));
    ch.finishAndReleaseAll();
  }

  @Test
  void aRelabelledDestinationIsCheckedWithItsNewLabels() {
    EmbeddedChannel ch = new EmbeddedChannel();
    snapshots.swap(snapshot(2, denyLocked()));
    admissions.admit(ch, admissionOf(policy));
    ch.runPendingTasks();
    assertTrue(ch.isOpen(), "echo-1 is not locked yet");

    Workload locked = workload("echo-1", "10.214.0.11", Map.of("app", "locked"));
    snapshots.swap(snapshot(3, locked, denyLocked()));
    ch.runPendingTasks();
    assertFalse(ch.isOpen());
    assertEquals(
        1.0,
        metrics
            .policyDenials("source", CLIENT.toString(), "echo-1", "default", "policy_changed")
            .count());
    ch.finishAndReleaseAll();
  }

  @Test
  void theDestinationIsReadAgainOnlyWhenTheSnapshotHasTheSamePodAtItsAddress() {
    Workload relabelled = workload("echo-1", "10.214.0.11", Map.of("app", "locked"));
    assertSame(
        relabelled, Admission.destinationIn(snapshot(2, relabelled), ECHO), "same pod, new labels");
    Workload reused = workload("other", "10.214.0.11", Map.of("app", "locked"));
    assertSame(ECHO, Admission.destinationIn(snapshot(2, reused), ECHO), "another pod there now");
    Workload elsewhere = workload("echo-9", "10.214.0.99", Map.of());
    assertSame(ECHO, Admission.destinationIn(snapshot(2, elsewhere), ECHO), "gone from config");
  }

  @Test
  void aStreamCheckedPerRequestIsReCheckedWithItsConnectionPartOnly() {
    List<String> asked = new ArrayList<>();
    Authorizer recording =
        new Authorizer() {
          @Override
          public Decision check(ConfigSnapshot s, Workload d, int p, ConnectionSource src) {
            asked.add("check");
            return new Decision(true, "default-allow", "allowed");
          }

          @Override
          public Decision checkBeforeRequests(
              ConfigSnapshot s, Workload d, int p, ConnectionSource src) {
            asked.add("beforeRequests");
            return new Decision(true, "default-allow", "allowed");
          }
        };
    EmbeddedChannel l7 = new EmbeddedChannel();
    EmbeddedChannel l4 = new EmbeddedChannel();
    admissions.admit(
        l7,
        Admission.connection(
            recording, true, "destination", snapshots.current(), ECHO, 9000, CALLER, null));
    admissions.admit(
        l4,
        Admission.connection(
            recording, false, "destination", snapshots.current(), ECHO, 9000, CALLER, null));
    snapshots.swap(snapshot(2));
    l7.runPendingTasks();
    l4.runPendingTasks();
    assertEquals(List.of("beforeRequests", "check"), asked);
    l7.finishAndReleaseAll();
    l4.finishAndReleaseAll();
  }

  @Test
  void aCheckThatThrowsClosesTheConnection() {
    EmbeddedChannel ch = new EmbeddedChannel();
    admissions.admit(
        ch,
        admissionOf(
            (s, d, p, src) -> {
              throw new IllegalStateException("authorizer bug");
            }));
    snapshots.swap(snapshot(2));
    ch.runPendingTasks();
    assertFalse(ch.isOpen());
    assertEquals(0, admissions.size());
    ch.finishAndReleaseAll();
  }

  @Test
  void admittingOffTheChannelsLoopIsRefused() throws Exception {
    EventLoopGroup group = new DefaultEventLoopGroup(1);
    try {
      Channel ch = new LocalChannel();
      group.register(ch).sync();
      assertThrows(IllegalStateException.class, () -> admissions.admit(ch, admissionOf(policy)));
      ch.close().sync();
    } finally {
      group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
    }
  }

  /**
   * Many connections on one loop: all are checked on that loop's thread (never the swapping one),
   * in several tasks, and every denied one is reset and counted.
   */
  @Test
  void manyConnectionsOnOneLoopAreAllCheckedThereInBatches() throws Exception {
    EventLoopGroup group = new DefaultEventLoopGroup(1);
    Channel server = null;
    List<Channel> clients = new ArrayList<>();
    try {
      LocalAddress address = new LocalAddress("admissions-test-" + System.nanoTime());
      server =
          new ServerBootstrap()
              .group(group)
              .channel(LocalServerChannel.class)
              .childHandler(
                  new ChannelInitializer<LocalChannel>() {
                    @Override
                    protected void initChannel(LocalChannel ch) {}
                  })
              .bind(address)
              .sync()
              .channel();
      Queue<String> threads = new ConcurrentLinkedQueue<>();
      Authorizer denyFromVersion2 =
          (s, d, p, src) -> {
            threads.add(Thread.currentThread().getName());
            return s.version() >= 2
                ? new Decision(false, "default/deny-client", "denied_by_policy")
                : new Decision(true, "default-allow", "allowed");
          };
      int n = Admissions.BATCH * 2 + 3;
      for (int i = 0; i < n; i++) {
        Channel ch =
            new Bootstrap()
                .group(group)
                .channel(LocalChannel.class)
                .handler(new ChannelInboundHandlerAdapter())
                .connect(address)
                .sync()
                .channel();
        clients.add(ch);
        ch.eventLoop().submit(() -> admissions.admit(ch, admissionOf(denyFromVersion2))).sync();
      }
      assertEquals(n, admissions.size());

      snapshots.swap(snapshot(2));
      for (Channel ch : clients) {
        assertTrue(ch.closeFuture().await(30, TimeUnit.SECONDS), ch + " was not reset");
      }
      assertEquals(n, threads.size());
      String testThread = Thread.currentThread().getName();
      assertTrue(threads.stream().noneMatch(testThread::equals), threads.toString());
      assertEquals((double) n, changed("source", "echo-1"));
      group.submit(() -> {}).sync(); // the close listeners have run
      assertEquals(0, admissions.size());
    } finally {
      for (Channel ch : clients) {
        ch.close();
      }
      if (server != null) {
        server.close().sync();
      }
      group.shutdownGracefully(0, 0, TimeUnit.SECONDS).sync();
    }
  }
}
