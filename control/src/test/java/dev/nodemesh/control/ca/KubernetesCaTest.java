package dev.nodemesh.control.ca;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.fabric8.kubernetes.api.model.PodBuilder;
import io.fabric8.kubernetes.api.model.Secret;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.server.mock.EnableKubernetesMockClient;
import io.fabric8.kubernetes.client.server.mock.KubernetesMockServer;
import io.fabric8.mockwebserver.http.RecordedRequest;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The Kubernetes side of the CA against fabric8's mock API server in CRUD mode: the root in a
 * Secret, and node authentication by TokenReview. CRUD mode answers a TokenReview create by echoing
 * the object without a status (it has no authenticator), so that one POST is an expectation (the
 * mixed dispatcher consults expectations first); the proxy pod it points to is a real object in the
 * CRUD store.
 */
@EnableKubernetesMockClient(crud = true)
class KubernetesCaTest {
  static KubernetesClient client;
  static KubernetesMockServer server;

  private static final String NS = "nodemesh-system";
  private static final String TOKENREVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews";

  @BeforeEach
  void clean() {
    client.secrets().inNamespace(NS).delete();
    client.pods().inNamespace(NS).delete();
  }

  @Test
  void theRootIsMadeOnceInASecretAndReusedByTheNextStart() throws Exception {
    SecretRootStore store = new SecretRootStore(client, NS, "nodemesh-ca");
    CertificateAuthority first =
        CertificateAuthority.loadOrCreate(store, CaSettings.defaults(), Clock.systemUTC());
    Secret s = client.secrets().inNamespace(NS).withName("nodemesh-ca").get();
    assertNotNull(s);
    assertTrue(s.getData().containsKey("ca.crt") && s.getData().containsKey("ca.key"));

    CertificateAuthority second =
        CertificateAuthority.loadOrCreate(
            new SecretRootStore(client, NS, "nodemesh-ca"),
            CaSettings.defaults(),
            Clock.systemUTC());
    assertEquals(first.signingCertificate(), second.signingCertificate());
    // A replica that lost the create race reads the winner's root.
    SigningMaterial loser = CertificateAuthority.newRoot("cluster.local", Clock.systemUTC());
    assertEquals(first.signingCertificate(), store.storeIfAbsent(loser).certificate());
  }

  @Test
  void aProxyTokenMapsToTheNodeOfItsPod() throws Exception {
    client
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName("nodemesh-proxy-abcde")
                .withNamespace(NS)
                .endMetadata()
                .withNewSpec()
                .withNodeName("node-7")
                .withServiceAccountName("nodemesh-proxy")
                .endSpec()
                .build())
        .create();
    String uid =
        client.pods().inNamespace(NS).withName("nodemesh-proxy-abcde").get().getMetadata().getUid();
    expectReview(
        true, "system:serviceaccount:" + NS + ":nodemesh-proxy", "nodemesh-proxy-abcde", uid);

    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(client, NS, "nodemesh-proxy", List.of("nodemesh-ca"));
    assertEquals("node-7", auth.nodeOf("the-proxy-token"));

    RecordedRequest review = lastReviewRequest();
    String body = review.getUtf8Body();
    assertTrue(body.contains("\"token\":\"the-proxy-token\""), body);
    assertTrue(body.contains("\"audiences\":[\"nodemesh-ca\"]"), body);
  }

  @Test
  void anUnauthenticatedTokenOrAnotherServiceAccountIsRefused() {
    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(client, NS, "nodemesh-proxy", List.of());
    expectReview(false, "", "", "");
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("bad"));
    expectReview(true, "system:serviceaccount:default:someone-else", "nodemesh-proxy-abcde", "");
    AuthenticationException e =
        assertThrows(AuthenticationException.class, () -> auth.nodeOf("other"));
    assertTrue(e.getMessage().contains("someone-else"), e.getMessage());
    // A token bound to a pod that no longer exists.
    expectReview(true, "system:serviceaccount:" + NS + ":nodemesh-proxy", "gone-pod", "");
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("stale"));
  }

  @Test
  void aFailingApiServerIsNotTheCallersFault() {
    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(client, NS, "nodemesh-proxy", List.of());
    server.expect().post().withPath(TOKENREVIEWS).andReturn(403, "forbidden").once();
    // Not an AuthenticationException: the CA and xDS answer UNAVAILABLE and the proxy retries.
    IllegalStateException e = assertThrows(IllegalStateException.class, () -> auth.nodeOf("t"));
    assertTrue(e.getMessage().startsWith("TokenReview failed"), e.getMessage());
  }

  private static void expectReview(
      boolean authenticated, String user, String podName, String podUid) {
    TokenReviewBuilder b =
        new TokenReviewBuilder()
            .withNewStatus()
            .withAuthenticated(authenticated)
            .withNewUser()
            .withUsername(user)
            .withExtra(
                podName.isEmpty()
                    ? Map.of()
                    : podUid.isEmpty()
                        ? Map.of(TokenReviewAuthenticator.POD_NAME, List.of(podName))
                        : Map.of(
                            TokenReviewAuthenticator.POD_NAME,
                            List.of(podName),
                            TokenReviewAuthenticator.POD_UID,
                            List.of(podUid)))
            .endUser()
            .endStatus();
    TokenReview answer = b.build();
    server.expect().post().withPath(TOKENREVIEWS).andReturn(201, answer).once();
  }

  private static RecordedRequest lastReviewRequest() throws InterruptedException {
    RecordedRequest last = null;
    for (RecordedRequest r = server.takeRequest(1, TimeUnit.SECONDS);
        r != null;
        r = server.takeRequest(1, TimeUnit.SECONDS)) {
      if (r.getPath().startsWith(TOKENREVIEWS)) {
        last = r;
      }
    }
    assertNotNull(last, "no TokenReview was posted");
    return last;
  }
}
