package dev.nodemesh.control.xds;

import static dev.nodemesh.control.Fixtures.key;
import static dev.nodemesh.control.Fixtures.pod;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.AuthenticationException;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.ca.NodeAuthenticator;
import dev.nodemesh.control.store.ResourceType;
import io.envoyproxy.envoy.service.discovery.v3.DeltaDiscoveryResponse;
import io.grpc.Grpc;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.Status;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.jspecify.annotations.Nullable;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The node credential on the xDS stream of a control plane that runs a CA: a stream proving the
 * node it names is served; no token or an unknown one is UNAUTHENTICATED, another node's token
 * PERMISSION_DENIED, an authenticator that cannot decide UNAVAILABLE, each counted by reason.
 * Without a CA, streams need no token (local mode without identity).
 */
class XdsNodeCredentialTest {
  private static final String W = ResourceType.WORKLOAD.typeUrl();

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
  }

  private void start(@Nullable NodeAuthenticator nodes) throws Exception {
    CertificateAuthority ca =
        nodes == null
            ? null
            : CertificateAuthority.loadOrCreate(
                new DirectoryRootStore(dir.resolve("ca")),
                CaSettings.defaults(),
                Clock.systemUTC());
    cp =
        ControlPlane.start(
            source,
            new InetSocketAddress("127.0.0.1", 0),
            null,
            Duration.ofMillis(20),
            nodes == null ? null : new CaOptions(ca, nodes, List.of()));
    channel =
        Grpc.newChannelBuilder(
                "127.0.0.1:" + cp.address().getPort(), InsecureChannelCredentials.create())
            .build();
    source.apply(
        s -> s.put(ResourceType.WORKLOAD, key("web-1"), pod("web-1", "n1", "10.0.1.1", Map.of())));
  }

  private static Set<String> names(DeltaDiscoveryResponse r) {
    return RawAdsClient.versions(r).keySet();
  }

  private Status refused(String node, @Nullable String token) throws Exception {
    try (RawAdsClient c = new RawAdsClient(channel, node, token)) {
      c.subscribe(W, Map.of());
      Status s = c.awaitError();
      c.expectNothing(50);
      return s;
    }
  }

  private double count(StreamRefusal r) {
    return cp.ads().metrics().refusedCount(r);
  }

  @Test
  void onlyAStreamProvingTheNodeItNamesIsServed() throws Exception {
    Map<String, String> tokens =
        BootstrapTokens.generate(dir.resolve("tokens"), List.of("n1", "n2"));
    start(BootstrapTokens.load(dir.resolve("tokens")));

    try (RawAdsClient c = new RawAdsClient(channel, "n1", tokens.get("n1"))) {
      c.subscribe(W, Map.of());
      assertEquals(Set.of(key("web-1")), names(c.next()));
    }
    assertEquals(Status.Code.UNAUTHENTICATED, refused("n1", null).getCode());
    assertEquals(Status.Code.UNAUTHENTICATED, refused("n1", "not-a-token-of-any-node").getCode());
    assertEquals(2.0, count(StreamRefusal.UNAUTHENTICATED));
    // n2's own token, naming n1 to get n1's view.
    Status s = refused("n1", tokens.get("n2"));
    assertEquals(Status.Code.PERMISSION_DENIED, s.getCode());
    assertEquals(1.0, count(StreamRefusal.NODE_MISMATCH));
    assertEquals(0.0, count(StreamRefusal.AUTHENTICATOR_UNAVAILABLE));
    // The refusal says the category, never the other node's name.
    assertEquals(false, String.valueOf(s.getDescription()).contains("n2"), s.toString());
    // Refused streams never became node streams.
    assertEquals(List.of(), cp.ads().connectedNodes());
    String scrape = cp.registry().scrape();
    assertEquals(
        true,
        scrape.contains("nodemesh_xds_streams_refused_total{reason=\"node_mismatch\"} 1.0"),
        scrape);
  }

  @Test
  void anAuthenticatorThatCannotDecideIsUnavailableNotUnauthenticated() throws Exception {
    start(
        new NodeAuthenticator() {
          @Override
          public String nodeOf(String token) throws AuthenticationException {
            throw new IllegalStateException("the API server is away");
          }

          @Override
          public String describe() {
            return "broken";
          }
        });
    assertEquals(Status.Code.UNAVAILABLE, refused("n1", "some-token").getCode());
    assertEquals(1.0, count(StreamRefusal.AUTHENTICATOR_UNAVAILABLE));
    assertEquals(0.0, count(StreamRefusal.UNAUTHENTICATED));
  }

  @Test
  void withoutACaNoTokenIsNeeded() throws Exception {
    start(null);
    try (RawAdsClient c = new RawAdsClient(channel, "n1")) {
      c.subscribe(W, Map.of());
      assertEquals(Set.of(key("web-1")), names(c.next()));
    }
    assertEquals(0.0, count(StreamRefusal.UNAUTHENTICATED));
    assertEquals(false, Files.exists(dir.resolve("ca")));
  }
}
