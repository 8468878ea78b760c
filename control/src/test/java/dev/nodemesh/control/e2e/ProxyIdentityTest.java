package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.BootstrapTokens;
import dev.nodemesh.control.ca.CaOptions;
import dev.nodemesh.control.ca.CaSettings;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.control.ca.DirectoryRootStore;
import dev.nodemesh.control.source.LocalSource;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.NodeProxyConfig;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.identity.IdentityConfig;
import dev.nodemesh.proxy.intercept.InterceptionMode;
import dev.nodemesh.proxy.transport.TransportKind;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real {@link NodeProxy} with a CA configured, against a control plane serving xDS and the CA
 * over TLS: the proxy holds its pod's certificate, rotates it (a 6 s lifetime forces renewals),
 * lists it in /config_dump without the key, and both sides count.
 */
class ProxyIdentityTest {
  @TempDir Path dir;

  private static final String POD =
      """
      apiVersion: v1
      kind: Pod
      metadata: {name: echo-1, namespace: default, labels: {app: echo}}
      spec: {nodeName: node-1, serviceAccountName: echo, containers: [{name: app, image: app}]}
      status: {podIP: "10.1.0.1"}
      """;

  @Test
  void theProxyHoldsAndRotatesItsPodsCertificate() throws Exception {
    Path config = Files.createDirectory(dir.resolve("config"));
    Files.writeString(config.resolve("pods.yaml"), POD);
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new DirectoryRootStore(dir.resolve("ca")),
            CaSettings.of("cluster.local", Duration.ofSeconds(6)),
            Clock.systemUTC());
    BootstrapTokens.generate(dir.resolve("tokens"), List.of("node-1"));
    try (ControlPlane cp =
            ControlPlane.start(
                new LocalSource(config, 50),
                new InetSocketAddress("127.0.0.1", 0),
                new InetSocketAddress("127.0.0.1", 0),
                Duration.ofMillis(20),
                new CaOptions(
                    ca, BootstrapTokens.load(dir.resolve("tokens")), List.of("127.0.0.1")));
        NodeProxy proxy =
            NodeProxy.start(
                new NodeProxyConfig(
                        TransportKind.NIO,
                        null,
                        dir.resolve("agent.sock"),
                        new InetSocketAddress("127.0.0.1", 0),
                        "node-1",
                        1,
                        InterceptionMode.iptables(),
                        "127.0.0.1:" + cp.address().getPort())
                    .withIdentity(
                        dir.resolve("ca/ca.crt"),
                        new IdentityConfig(
                            null, dir.resolve("node-1.token"), "cluster.local", Duration.ZERO)))) {
      CertificateManager certs = proxy.identity();
      assertNotNull(certs);
      SpiffeId id = new SpiffeId("cluster.local", "default", "echo");
      await("the pod's certificate", () -> !certs.held().isEmpty());
      assertEquals(id, certs.held().get(0).id());
      String first = certs.held().get(0).serial();

      String dump = get(proxy.adminAddress(), "/config_dump");
      assertTrue(dump.contains("\"spiffeId\" : \"" + id + "\""), dump);
      assertFalse(dump.contains("PRIVATE") || dump.contains("\"key\""), dump);

      await("two rotations", () -> rotations(proxy) >= 2);
      assertFalse(first.equals(certs.held().get(0).serial()), "a new certificate is held");
      assertTrue(
          certs
              .certificate(id)
              .toCompletableFuture()
              .get(10, TimeUnit.SECONDS)
              .notAfter()
              .isAfter(java.time.Instant.now()));
      String cpMetrics = get(cp.healthAddress(), "/metrics");
      assertTrue(cp.caMetrics().issuedCount() >= 3, cpMetrics);
      assertTrue(
          get(proxy.adminAddress(), "/metrics").contains("nodemesh_certificate_expiry_seconds"));
    }
  }

  private static double rotations(NodeProxy proxy) {
    return proxy
        .dataPlane()
        .metrics()
        .registry()
        .get("nodemesh.certificate.rotations")
        .counter()
        .count();
  }

  private static void await(String what, BooleanSupplier ok) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (!ok.getAsBoolean()) {
      assertTrue(System.nanoTime() < deadline, "timed out waiting for " + what);
      Thread.sleep(50);
    }
  }

  private static String get(InetSocketAddress a, String path) {
    try {
      return HttpClient.newHttpClient()
          .send(
              HttpRequest.newBuilder(URI.create("http://127.0.0.1:" + a.getPort() + path)).build(),
              HttpResponse.BodyHandlers.ofString())
          .body();
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }
}
