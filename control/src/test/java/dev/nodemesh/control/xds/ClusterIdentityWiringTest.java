package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.SecretRootStore;
import dev.nodemesh.control.ca.TokenReviewAuthenticator;
import dev.nodemesh.control.ca.TrustBundlePublisher;
import dev.nodemesh.control.store.ResourceType;
import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.grpc.Grpc;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import io.grpc.TlsChannelCredentials;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The control plane wired as deploy/kubernetes/20-control.yaml wires it, against fabric8's mock API
 * server: root in a Secret, root certificate published to the ConfigMap, TLS for the Service's DNS
 * name, nodes authenticated by TokenReview. A proxy that trusts exactly the ConfigMap's {@code
 * ca.crt} (as the DaemonSet mounts it) and dials the Service name gets its node's view with its
 * pod-bound token; the same token naming another node is PERMISSION_DENIED; a name the serving
 * certificate is not issued for fails TLS.
 */
@EnableKubernetesMockClient(crud = true)
class ClusterIdentityWiringTest {
  static KubernetesClient client;
  static KubernetesMockServer server;

  private static final String NS = "nodemesh-system";
  private static final String SVC = "nodemesh-control.nodemesh-system.svc";
  private static final String AUDIENCE = "nodemesh-control";

  @TempDir Path dir;

  private final TestSource source = new TestSource();
  private ControlPlane cp;
  private ManagedChannel channel;

  @AfterEach
  void stop() throws Exception {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (cp != null) {
      cp.close();
    }
    client.configMaps().inNamespace(NS).delete();
    client.secrets().inNamespace(NS).delete();
    client.pods().inNamespace(NS).delete();
  }

  @Test
  void aProxyTrustingThePublishedRootGetsItsNodesViewOverTlsWithItsPodToken() throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new SecretRootStore(client, NS, "nodemesh-ca-root"),
            CaSettings.defaults(),
            Clock.systemUTC());
    cp =
        ControlPlane.start(
            source,
            new InetSocketAddress("127.0.0.1", 0),
            null,
            Duration.ofMillis(20),
            new CaOptions(
                ca,
                new TokenReviewAuthenticator(client, NS, "nodemesh-node", List.of(AUDIENCE)),
                List.of(SVC, "nodemesh-control"),
                new TrustBundlePublisher(
                    client, NS, TrustBundlePublisher.DEFAULT_NAME, ca::trustBundle)));
    source.apply(
        s ->
            s.put(
                ResourceType.WORKLOAD, key("web-1"), pod("web-1", "node-7", "10.0.7.1", Map.of())));

    // The DaemonSet's ConfigMap volume: ca.crt as a file.
    Path root = dir.resolve("ca.crt");
    Files.writeString(
        root,
        client
            .configMaps()
            .inNamespace(NS)
            .withName(TrustBundlePublisher.DEFAULT_NAME)
            .get()
            .getData()
            .get(TrustBundlePublisher.KEY));
    String uid =
        client
            .pods()
            .inNamespace(NS)
            .resource(
                new PodBuilder()
                    .withNewMetadata()
                    .withName("nodemesh-node-x7")
                    .withNamespace(NS)
                    .endMetadata()
                    .withNewSpec()
                    .withNodeName("node-7")
                    .endSpec()
                    .build())
            .create()
            .getMetadata()
            .getUid();

    channel = channelTo(SVC, root);
    String w = ResourceType.WORKLOAD.typeUrl();
    expectReview("nodemesh-node-x7", uid);
    try (RawAdsClient c = new RawAdsClient(channel, "node-7", "pod-token")) {
      c.subscribe(w, Map.of());
      assertEquals(Set.of(key("web-1")), RawAdsClient.versions(c.next()).keySet());
    }
    // The same pod's token, naming another node to get its view.
    expectReview("nodemesh-node-x7", uid);
    try (RawAdsClient c = new RawAdsClient(channel, "node-8", "pod-token")) {
      c.subscribe(w, Map.of());
      assertEquals(Status.Code.PERMISSION_DENIED, c.awaitError().getCode());
    }
    assertEquals(1.0, cp.ads().metrics().refusedCount(StreamRefusal.NODE_MISMATCH));

    // A name the serving certificate is not issued for: TLS fails, nothing reaches the server.
    ManagedChannel other = channelTo("nodemesh-control.elsewhere.svc", root);
    try (RawAdsClient c = new RawAdsClient(other, "node-7", "pod-token")) {
      c.subscribe(w, Map.of());
      assertEquals(Status.Code.UNAVAILABLE, c.awaitError().getCode());
    } finally {
      other.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    assertEquals(0.0, cp.ads().metrics().refusedCount(StreamRefusal.UNAUTHENTICATED));
  }

  private ManagedChannel channelTo(String authority, Path root) throws Exception {
    return Grpc.newChannelBuilder(
            "127.0.0.1:" + cp.address().getPort(),
            TlsChannelCredentials.newBuilder().trustManager(root.toFile()).build())
        .overrideAuthority(authority)
        .build();
  }

  private static void expectReview(String podName, String podUid) {
    server
        .expect()
        .post()
        .withPath("/apis/authentication.k8s.io/v1/tokenreviews")
        .andReturn(
            201,
            new TokenReviewBuilder()
                .withNewStatus()
                .withAuthenticated(true)
                .withAudiences(AUDIENCE)
                .withNewUser()
                .withUsername("system:serviceaccount:" + NS + ":nodemesh-node")
                .withExtra(
                    Map.of(
                        "authentication.kubernetes.io/pod-name",
                        List.of(podName),
                        "authentication.kubernetes.io/pod-uid",
                        List.of(podUid)))
                .endUser()
                .endStatus()
                .build())
        .once();
  }
}
