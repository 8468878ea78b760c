package dev.nodemesh.proxy.xds;

import dev.nodemesh.model.config.ConfigSnapshot;
import dev.nodemesh.proxy.config.SnapshotHolder;
import io.envoyproxy.envoy.service.discovery.v3.Resource;
import io.grpc.ChannelCredentials;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.micrometer.core.instrument.Counter;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The production wiring of an {@link XdsClient}: a plaintext gRPC channel to the control plane
 * (mTLS comes with the CA issue), one {@code nodemesh-xds} thread as the client's serialized
 * executor, backoff from 1 s up to 30 s, and logs plus the rejected-config counter as its listener.
 */
public final class XdsConfigSource implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(XdsConfigSource.class);
  static final int MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

  private final ManagedChannel channel;
  private final ScheduledExecutorService executor;
  private final XdsClient client;

  private XdsConfigSource(
      ManagedChannel channel, ScheduledExecutorService executor, XdsClient client) {
    this.channel = channel;
    this.executor = executor;
    this.client = client;
  }

  /** Starts subscribing; returns at once (the first config arrives asynchronously). */
  public static XdsConfigSource start(
      String target, String nodeName, SnapshotHolder snapshots, Counter rejected) {
    return start(target, InsecureChannelCredentials.create(), nodeName, snapshots, rejected);
  }

  /** As above over {@code credentials} (TLS to a control plane serving its CA's certificate). */
  public static XdsConfigSource start(
      String target,
      ChannelCredentials credentials,
      String nodeName,
      SnapshotHolder snapshots,
      Counter rejected) {
    return start(
        target,
        credentials,
        nodeName,
        snapshots,
        rejected,
        new XdsClient.Listener() {},
        XdsSettings.DEFAULT);
  }

  /**
   * As above; {@code also} hears every accepted snapshot with its resources after the log (the
   * proxy saves it on the node and marks the config source), and an expired initial fetch.
   */
  public static XdsConfigSource start(
      String target,
      ChannelCredentials credentials,
      String nodeName,
      SnapshotHolder snapshots,
      Counter rejected,
      XdsClient.Listener also,
      XdsSettings settings) {
    // Netty named, not looked up: see IdentityClient (no second, shaded Netty loaded).
    ManagedChannel channel =
        NettyChannelBuilder.forTarget(target, credentials)
            // The first response carries a whole view (~150 bytes a workload): gRPC's default
            // 4 MiB limit would refuse a cluster of some 25,000 pods.
            .maxInboundMessageSize(MAX_MESSAGE_BYTES)
            // A control plane that vanished without a FIN is noticed, so reconnecting starts.
            .keepAliveTime(30, TimeUnit.SECONDS)
            .build();
    ScheduledExecutorService executor =
        Executors.newSingleThreadScheduledExecutor(new DefaultThreadFactory("nodemesh-xds", true));
    XdsClient client =
        new XdsClient(
            channel,
            nodeName,
            snapshots,
            executor,
            new Backoff(
                TimeUnit.SECONDS.toNanos(1),
                TimeUnit.SECONDS.toNanos(30),
                () -> ThreadLocalRandom.current().nextDouble()),
            new XdsClient.Listener() {
              @Override
              public void accepted(ConfigSnapshot snapshot, Map<String, List<Resource>> resources) {
                log.info("xDS {}", snapshot.describe());
                also.accepted(snapshot, resources);
              }

              @Override
              public void rejected(String reasons) {
                rejected.increment();
              }

              @Override
              public void initialFetchTimedOut(List<String> missingTypeUrls) {
                also.initialFetchTimedOut(missingTypeUrls);
              }
            },
            settings.initialFetchTimeout());
    client.start();
    log.info("subscribing to the control plane at {} as node {}", target, nodeName);
    return new XdsConfigSource(channel, executor, client);
  }

  public XdsClient client() {
    return client;
  }

  /**
   * A reporter of this node's enrolled pods over the same channel (and so the same node token), on
   * the xDS thread; it reports once started, and again every 30 s.
   */
  public EnrolmentReporter enrolmentReporter(String nodeName, Supplier<Set<String>> enrolledUids) {
    return new EnrolmentReporter(
        channel,
        nodeName,
        enrolledUids,
        executor,
        new Backoff(
            TimeUnit.SECONDS.toNanos(1),
            TimeUnit.SECONDS.toNanos(30),
            () -> ThreadLocalRandom.current().nextDouble()),
        TimeUnit.SECONDS.toNanos(30));
  }

  @Override
  public void close() throws InterruptedException {
    client.close();
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
