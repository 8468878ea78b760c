package dev.nodemesh.control.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.control.ControlPlane;
import dev.nodemesh.control.ca.CertificateAuthority;
import dev.nodemesh.model.identity.SpiffeId;
import dev.nodemesh.proxy.NodeProxy;
import dev.nodemesh.proxy.identity.CertificateManager;
import dev.nodemesh.proxy.testing.Await;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A real {@link NodeProxy} with a CA configured, against a control plane serving xDS and the CA
 * over TLS: the proxy holds its pod's certificate, rotates it (a 6 s lifetime forces renewals),
 * lists it in /config_dump without the key, and both sides count.
 */
class ProxyIdentityTest {
  private static final Duration WAIT = Duration.ofSeconds(30);
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
    CertificateAuthority ca = LoopbackMesh.ca(dir, Duration.ofSeconds(6));
    try (ControlPlane cp = LoopbackMesh.startWithCa(dir, config, ca);
        NodeProxy proxy = LoopbackMesh.startProxy(dir, cp, true)) {
      CertificateManager certs = proxy.identity();
      assertNotNull(certs);
      SpiffeId id = new SpiffeId("cluster.local", "default", "echo");
      Await.until(WAIT, "the pod's certificate", () -> !certs.held().isEmpty());
      assertEquals(id, certs.held().get(0).id());
      String first = certs.held().get(0).serial();

      String dump = get(proxy.adminAddress(), "/config_dump");
      assertTrue(dump.contains("\"spiffeId\" : \"" + id + "\""), dump);
      assertFalse(dump.contains("PRIVATE") || dump.contains("\"key\""), dump);

      Await.until(WAIT, "two rotations", () -> rotations(proxy) >= 2);
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

  private static String get(InetSocketAddress a, String path) throws Exception {
    return LoopbackMesh.get(a, path).body();
  }
}
