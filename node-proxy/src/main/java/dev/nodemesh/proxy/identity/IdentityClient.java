package dev.nodemesh.proxy.identity;

import dev.nodemesh.proxy.config.SnapshotHolder;
import io.grpc.ChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.netty.NettyChannelBuilder;
import io.micrometer.core.instrument.MeterRegistry;
import io.netty.util.concurrent.DefaultThreadFactory;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The production wiring of a {@link CertificateManager}: a gRPC channel to the CA, the node's token
 * file, one {@code nodemesh-identity} thread as its scheduler, the system clock, and the config
 * snapshot checked every second for pods placed on or gone from this node.
 */
public final class IdentityClient implements AutoCloseable {
  private static final Logger log = LoggerFactory.getLogger(IdentityClient.class);
  static final Duration FOLLOW_PERIOD = Duration.ofSeconds(1);

  private final ManagedChannel channel;
  private final ScheduledExecutorService executor;
  private final CertificateManager manager;

  private IdentityClient(
      ManagedChannel channel, ScheduledExecutorService executor, CertificateManager manager) {
    this.channel = channel;
    this.executor = executor;
    this.manager = manager;
  }

  /**
   * @param xdsTarget used as the CA's target when {@code config} names none
   * @param credentials TLS with the control plane's root, or plaintext
   */
  public static IdentityClient start(
      IdentityConfig config,
      String nodeName,
      @Nullable String xdsTarget,
      ChannelCredentials credentials,
      SnapshotHolder snapshots,
      MeterRegistry registry) {
    String target =
        Objects.requireNonNull(
            config.caTarget() != null ? config.caTarget() : xdsTarget, "no CA target");
    // Netty named rather than found through the provider registry: the launcher's class path also
    // holds the CNI plugin's grpc-netty-shaded, whose second copy of Netty must stay unloaded.
    ManagedChannel channel =
        NettyChannelBuilder.forTarget(target, credentials)
            .keepAliveTime(30, TimeUnit.SECONDS)
            .build();
    ScheduledExecutorService executor =
        Executors.newSingleThreadScheduledExecutor(
            new DefaultThreadFactory("nodemesh-identity", true));
    CertificateManager manager =
        new CertificateManager(
            nodeName,
            config.trustDomain(),
            config.certTtl(),
            new GrpcCertificateSigner(
                channel,
                GrpcCertificateSigner.tokenFile(config.tokenFile()),
                config.plaintextToken()),
            TaskScheduler.of(executor),
            Clock.systemUTC(),
            () -> ThreadLocalRandom.current().nextDouble(),
            registry);
    manager.follow(snapshots, FOLLOW_PERIOD);
    log.info(
        "workload certificates from the CA at {} (trust domain {}, token {})",
        target,
        config.trustDomain(),
        config.tokenFile());
    return new IdentityClient(channel, executor, manager);
  }

  public CertificateManager manager() {
    return manager;
  }

  @Override
  public void close() throws InterruptedException {
    manager.close();
    executor.shutdown();
    executor.awaitTermination(5, TimeUnit.SECONDS);
    channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
  }
}
