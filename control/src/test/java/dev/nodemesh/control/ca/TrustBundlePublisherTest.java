package dev.nodemesh.control.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.nodemesh.model.identity.Pem;
import io.fabric8.kubernetes.api.model.ConfigMap;
import io.fabric8.kubernetes.api.model.StatusBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Publishing the CA's trust bundle into a ConfigMap, against fabric8's mock API server in CRUD
 * mode: created once, left alone when it holds the bundle, put right when edited or when the root
 * changes, never carrying a key, and a clear error when RBAC forbids it (a 403 expectation, which
 * the mixed dispatcher answers before the CRUD store).
 */
@EnableKubernetesMockClient(crud = true)
class TrustBundlePublisherTest {
  static KubernetesClient client;
  static KubernetesMockServer server;

  private static final String NS = "nodemesh-system";
  private static final String NAME = TrustBundlePublisher.DEFAULT_NAME;

  @BeforeEach
  void clean() {
    client.configMaps().inNamespace(NS).delete();
  }

  private static ConfigMap published() {
    return client.configMaps().inNamespace(NS).withName(NAME).get();
  }

  @Test
  void theRootIsPublishedOnceAndRewrittenWhenEditedOrChanged() throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new SecretRootStore(client, NS, "nodemesh-ca-root-secret"),
            CaSettings.defaults(),
            Clock.systemUTC());
    AtomicReference<List<X509Certificate>> bundle = new AtomicReference<>(ca.trustBundle());
    TrustBundlePublisher p = new TrustBundlePublisher(client, NS, NAME, bundle::get);

    assertEquals(TrustBundlePublisher.Outcome.CREATED, p.publish());
    ConfigMap cm = published();
    assertNotNull(cm);
    assertEquals(java.util.Set.of(TrustBundlePublisher.KEY), cm.getData().keySet());
    String pem = cm.getData().get(TrustBundlePublisher.KEY);
    assertEquals(ca.trustBundle(), Pem.certificates(pem), "exactly the CA's roots");
    assertFalse(pem.contains("PRIVATE KEY"), "never a key");
    assertEquals("nodemesh", cm.getMetadata().getLabels().get("app.kubernetes.io/part-of"));
    String version = cm.getMetadata().getResourceVersion();

    // Idempotent: a second start (or the other replica) writes nothing.
    assertEquals(TrustBundlePublisher.Outcome.UNCHANGED, p.publish());
    assertEquals(version, published().getMetadata().getResourceVersion());

    // Someone edits it: put back.
    cm.getData().put(TrustBundlePublisher.KEY, "garbage");
    cm.getData().put("extra", "x");
    client.configMaps().inNamespace(NS).resource(cm).update();
    assertEquals(TrustBundlePublisher.Outcome.UPDATED, p.publish());
    assertEquals(Map.of(TrustBundlePublisher.KEY, pem), published().getData());

    // A new root (two in the bundle while nodes move over): the ConfigMap follows.
    X509Certificate other =
        CertificateAuthority.newRoot("cluster.local", Clock.systemUTC()).certificate();
    bundle.set(List.of(ca.trustBundle().get(0), other));
    assertEquals(TrustBundlePublisher.Outcome.UPDATED, p.publish());
    assertEquals(
        List.of(ca.trustBundle().get(0), other),
        Pem.certificates(published().getData().get(TrustBundlePublisher.KEY)));

    // Deleted: created again.
    client.configMaps().inNamespace(NS).withName(NAME).delete();
    assertEquals(TrustBundlePublisher.Outcome.CREATED, p.publish());
  }

  @Test
  void forbiddenByRbacIsAClearErrorNamingTheMissingRule() throws Exception {
    CertificateAuthority ca =
        CertificateAuthority.loadOrCreate(
            new SecretRootStore(client, NS, "nodemesh-ca-root-secret"),
            CaSettings.defaults(),
            Clock.systemUTC());
    server
        .expect()
        .get()
        .withPath("/api/v1/namespaces/" + NS + "/configmaps/" + NAME)
        .andReturn(
            403,
            new StatusBuilder()
                .withCode(403)
                .withReason("Forbidden")
                .withMessage(
                    "configmaps \"nodemesh-ca-root\" is forbidden: User"
                        + " \"system:serviceaccount:nodemesh-system:nodemesh-control\" cannot get"
                        + " resource \"configmaps\"")
                .build())
        .once();
    TrustBundlePublisher p = new TrustBundlePublisher(client, NS, NAME, ca::trustBundle);
    IOException e = assertThrows(IOException.class, p::publish);
    assertTrue(e.getMessage().contains("forbidden"), e.getMessage());
    assertTrue(e.getMessage().contains("get, create and update on configmaps"), e.getMessage());
    assertTrue(e.getMessage().contains("ConfigMap " + NS + "/" + NAME), e.getMessage());
    // start() publishes first, so a control plane without the rule does not start.
    server
        .expect()
        .get()
        .withPath("/api/v1/namespaces/" + NS + "/configmaps/" + NAME)
        .andReturn(403, new StatusBuilder().withCode(403).withReason("Forbidden").build())
        .once();
    try (TrustBundlePublisher q = new TrustBundlePublisher(client, NS, NAME, ca::trustBundle)) {
      assertThrows(IOException.class, () -> q.start(300));
    }
  }

  @Test
  void anEmptyBundleIsNeverPublished() {
    TrustBundlePublisher p = new TrustBundlePublisher(client, NS, NAME, List::of);
    assertThrows(IllegalArgumentException.class, p::publish);
    assertEquals(null, published());
  }
}
