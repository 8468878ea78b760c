package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.WorkloadRef;
import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.ca.Refusal;
import dev.nodemesh.control.store.ResourceType;
import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.config.SnapshotHolder;
import dev.nodemesh.proxy.identity.GrpcCertificateSigner;
import dev.nodemesh.proxy.identity.IdentityClient;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.identity.NodeToken;
import dev.nodemesh.proxy.identity.WorkloadCertificate;
import dev.nodemesh.proxy.xds.XdsConfigSource;
import io.grpc.ChannelCredentials;
import io.grpc.CompositeChannelCredentials;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.bouncycastle.pkcs.jcajce.JcaPKCS10CertificationRequestBuilder;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole identity path on loopback: a control plane serving xDS and the CA over TLS with a
 * certificate from its own CA, a node's xDS client and certificate manager verifying it against the
 * root file, and the manager fetching this node's workload certificate by its bootstrap token.
 */
class IdentityOverTlsTest {
  @TempDir Path dir;

  private final TestSource source = new TestSource();
  private final SnapshotHolder snapshots = new SnapshotHolder();
  private ControlPlane cp;
  private XdsConfigSource xds;
  private IdentityClient identity;
  private ManagedChannel plain;

  @AfterEach
  void stop() throws Exception {
    if (identity != null) {
      identity.close();
    }
    if (xds != null) {
      xds.close();
    }
    if (plain != null) {
      plain.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (cp != null) {
      cp.close();
    }
  }

  @Test
  void aNodeGetsConfigAndItsWorkloadCertificateOverTls() throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")), CaSettings.defaults(), Clock.systemUTC());
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("n1", "n2"));
    cp =
        ControlPlane.start(
            source,
            new InetSocketAddress("127.0.0.1", 0),
            null,
            Duration.ofMillis(20),
            new CaOptions(
                ca,
                BootstrapTokens.load(dir.resolve("tokens")),
                List.of("localhost", "127.0.0.1")));
    source.apply(
        s -> {
          s.put(ResourceType.WORKLOAD, key("client"), pod("client", "n1", "10.0.1.1", Map.of()));
          s.put(ResourceType.WORKLOAD, key("web-1"), pod("web-1", "n2", "10.0.2.1", Map.of()));
        });
    String target = "127.0.0.1:" + cp.address().getPort();
    ChannelCredentials tls =
        TlsChannelCredentials.newBuilder().trustManager(dir.resolve("ca/ca.crt").toFile()).build();

    // The xDS stream carries the node's token, as NodeProxy sends it (a CA is running).
    xds =
        XdsConfigSource.start(
            target,
            CompositeChannelCredentials.create(tls, NodeToken.fromFile(dir.resolve("n1.token"))),
            "n1",
            snapshots,
            Counter.builder("rejected").register(new SimpleMeterRegistry()));
    // n1 is sent its own pod (web-1 is on n2 and behind no Service).
    await("config over TLS", () -> snapshots.current().workloads().size() == 1);

    identity =
        IdentityClient.start(
            new IdentityConfig(null, dir.resolve("n1.token"), "cluster.local", Duration.ZERO),
            "n1",
            target,
            tls,
            snapshots,
            new SimpleMeterRegistry());
    await("the client pod's certificate", () -> !identity.manager().held().isEmpty());
    SpiffeId id = new SpiffeId("cluster.local", "default", "default");
    assertEquals(id, identity.manager().held().get(0).id());
    WorkloadCertificate cert =
        identity.manager().certificate(id).toCompletableFuture().get(10, TimeUnit.SECONDS);
    PKIXParameters params =
        new PKIXParameters(Set.of(new TrustAnchor(ca.trustBundle().get(0), null)));
    params.setRevocationEnabled(false);
    CertPathValidator.getInstance("PKIX")
        .validate(CertificateFactory.getInstance("X.509").generateCertPath(cert.chain()), params);
    assertEquals(1, identity.manager().held().size(), "web-1 is on n2: not fetched by n1");

    // n1's token asking for n2's pod over the same TLS channel: refused and counted.
    ManagedChannel channel = Grpc.newChannelBuilder(target, tls).build();
    try {
      GrpcCertificateSigner n1 =
          new GrpcCertificateSigner(
              channel, GrpcCertificateSigner.tokenFile(dir.resolve("n1.token")));
      ExecutionException e =
          assertThrows(
              ExecutionException.class,
              () -> n1.sign(request("web-1")).toCompletableFuture().get(10, TimeUnit.SECONDS));
      assertEquals(Status.Code.PERMISSION_DENIED, Status.fromThrowable(e.getCause()).getCode());
      assertEquals(1, cp.caMetrics().refusedCount(Refusal.OTHER_NODE));
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }

    // A plaintext client cannot talk to the TLS server.
    plain = Grpc.newChannelBuilder(target, InsecureChannelCredentials.create()).build();
    GrpcCertificateSigner plaintext = new GrpcCertificateSigner(plain, () -> "x");
    ExecutionException e =
        assertThrows(
            ExecutionException.class,
            () ->
                plaintext.sign(request("client")).toCompletableFuture().get(10, TimeUnit.SECONDS));
    assertEquals(Status.Code.UNAVAILABLE, Status.fromThrowable(e.getCause()).getCode());
    assertTrue(cp.caMetrics().issuedCount() >= 1);
  }

  private static CreateCertificateRequest request(String pod) throws Exception {
    java.security.KeyPairGenerator g = java.security.KeyPairGenerator.getInstance("EC");
    g.initialize(256);
    java.security.KeyPair pair = g.generateKeyPair();
    String csr =
        Pem.encode(
            new JcaPKCS10CertificationRequestBuilder(
                    new javax.security.auth.x500.X500Principal(""), pair.getPublic())
                .build(
                    new org.bouncycastle.operator.jcajce.JcaContentSignerBuilder("SHA256withECDSA")
                        .build(pair.getPrivate())));
    return CreateCertificateRequest.newBuilder()
        .setCsr(csr)
        .setWorkload(
            WorkloadRef.newBuilder().setNamespace("default").setName(pod).setUid("uid-" + pod))
        .build();
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("timed out waiting for " + what);
      }
      Thread.sleep(10);
    }
  }
}
