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

  private String proxyPod(String name, String node) {
    client
        .pods()
        .inNamespace(NS)
        .resource(
            new PodBuilder()
                .withNewMetadata()
                .withName(name)
                .withNamespace(NS)
                .endMetadata()
                .withNewSpec()
                .withNodeName(node)
                .withServiceAccountName("nodemesh-proxy")
                .endSpec()
                .build())
        .create();
    return client.pods().inNamespace(NS).withName(name).get().getMetadata().getUid();
  }

  /** A JWT-shaped token whose payload has this {@code exp}; the signature is never looked at. */
  private static String jwt(String subject, long exp) {
    java.util.Base64.Encoder b64 = java.util.Base64.getUrlEncoder().withoutPadding();
    String payload = "{\"sub\":\"" + subject + "\",\"exp\":" + exp + "}";
    return b64.encodeToString(
            "{\"alg\":\"RS256\"}".getBytes(java.nio.charset.StandardCharsets.UTF_8))
        + "."
        + b64.encodeToString(payload.getBytes(java.nio.charset.StandardCharsets.UTF_8))
        + ".c2ln";
  }

  private static int reviewsPosted() throws InterruptedException {
    int n = 0;
    for (RecordedRequest r = server.takeRequest(200, TimeUnit.MILLISECONDS);
        r != null;
        r = server.takeRequest(200, TimeUnit.MILLISECONDS)) {
      if (r.getPath().startsWith(TOKENREVIEWS)) {
        n++;
      }
    }
    return n;
  }

  @Test
  void anAcceptedTokenIsCachedUntilItsExpiryOrTheCap() throws Exception {
    String uid = proxyPod("nodemesh-proxy-cache", "node-3");
    MutableClock clock = new MutableClock(java.time.Instant.parse("2026-12-07T00:00:00Z"));
    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(
            client,
            NS,
            "nodemesh-proxy",
            List.of("nodemesh-ca"),
            clock,
            java.time.Duration.ofMinutes(5));
    String user = "system:serviceaccount:" + NS + ":nodemesh-proxy";
    // exp 2 minutes from now: sooner than the 5-minute cap.
    String token = jwt("a", clock.instant().getEpochSecond() + 120);
    reviewsPosted();
    expectReview(true, user, "nodemesh-proxy-cache", uid);
    assertEquals("node-3", auth.nodeOf(token)); // miss: reviewed
    assertEquals("node-3", auth.nodeOf(token)); // hit: no review (none is expected any more)
    assertEquals(1, reviewsPosted());
    clock.advance(java.time.Duration.ofSeconds(119));
    assertEquals("node-3", auth.nodeOf(token));
    assertEquals(0, reviewsPosted());
    clock.advance(java.time.Duration.ofSeconds(1)); // at exp: asked again
    expectReview(true, user, "nodemesh-proxy-cache", uid);
    assertEquals("node-3", auth.nodeOf(token));
    assertEquals(1, reviewsPosted());

    // A token that lives longer than the cap is asked about again after the cap.
    String longLived = jwt("b", clock.instant().getEpochSecond() + 3600);
    expectReview(true, user, "nodemesh-proxy-cache", uid);
    assertEquals("node-3", auth.nodeOf(longLived));
    clock.advance(java.time.Duration.ofMinutes(4));
    assertEquals("node-3", auth.nodeOf(longLived));
    assertEquals(1, reviewsPosted());
    clock.advance(java.time.Duration.ofMinutes(1));
    expectReview(true, user, "nodemesh-proxy-cache", uid);
    assertEquals("node-3", auth.nodeOf(longLived));
    assertEquals(1, reviewsPosted());
  }

  @Test
  void aRefusalIsCachedBrieflyAndAnApiFailureNotAtAll() throws Exception {
    MutableClock clock = new MutableClock(java.time.Instant.parse("2026-12-07T00:00:00Z"));
    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(
            client, NS, "nodemesh-proxy", List.of(), clock, java.time.Duration.ofMinutes(5));
    reviewsPosted();
    server.expect().post().withPath(TOKENREVIEWS).andReturn(403, "forbidden").once();
    assertThrows(IllegalStateException.class, () -> auth.nodeOf("t"));
    expectReview(false, "", "", "");
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("t"));
    assertEquals(2, reviewsPosted(), "the API failure was not cached");
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("t"));
    assertEquals(0, reviewsPosted(), "the refusal was");
    clock.advance(TokenReviewAuthenticator.REFUSAL_AGE);
    expectReview(false, "", "", "");
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("t"));
    assertEquals(1, reviewsPosted());
  }

  @Test
  void aReviewForAnotherAudienceIsRefused() throws Exception {
    String uid = proxyPod("nodemesh-proxy-aud", "node-4");
    String user = "system:serviceaccount:" + NS + ":nodemesh-proxy";
    TokenReviewAuthenticator auth =
        new TokenReviewAuthenticator(client, NS, "nodemesh-proxy", List.of("nodemesh-ca"));
    expectReview(true, user, "nodemesh-proxy-aud", uid, List.of("https://kubernetes.default.svc"));
    AuthenticationException e =
        assertThrows(AuthenticationException.class, () -> auth.nodeOf("for-the-api-server"));
    assertTrue(e.getMessage().contains("audience"), e.getMessage());
    expectReview(true, user, "nodemesh-proxy-aud", uid, List.of());
    assertThrows(AuthenticationException.class, () -> auth.nodeOf("no-audiences-at-all"));
    expectReview(true, user, "nodemesh-proxy-aud", uid, List.of("other", "nodemesh-ca"));
    assertEquals("node-4", auth.nodeOf("one-of-them"));
  }

  @Test
  void theExpiryClaimIsReadOnlyFromAJwt() {
    assertEquals(
        java.time.Instant.ofEpochSecond(1700000000L),
        TokenReviewCache.expiry(jwt("x", 1700000000L)));
    assertEquals(null, TokenReviewCache.expiry("opaque-bootstrap-token"));
    assertEquals(null, TokenReviewCache.expiry("a.!!!.c"));
    assertEquals(null, TokenReviewCache.expiry("a.e30.c")); // {} has no exp
  }

  @Test
  void theCacheIsBounded() {
    MutableClock clock = new MutableClock(java.time.Instant.parse("2026-12-07T00:00:00Z"));
    TokenReviewCache cache =
        new TokenReviewCache(
            clock, java.time.Duration.ofMinutes(5), java.time.Duration.ofSeconds(10), 3);
    for (int i = 0; i < 10; i++) {
      cache.accepted("t" + i, "n");
    }
    assertEquals(3, cache.size());
    assertNotNull(cache.get("t9"));
    assertEquals(null, cache.get("t0"));
  }

  /** A clock the test moves. */
  static final class MutableClock extends Clock {
    private java.time.Instant now;

    MutableClock(java.time.Instant now) {
      this.now = now;
    }

    void advance(java.time.Duration d) {
      now = now.plus(d);
    }

    @Override
    public java.time.ZoneId getZone() {
      return java.time.ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }

    @Override
    public java.time.Instant instant() {
      return now;
    }
  }

  private static void expectReview(
      boolean authenticated, String user, String podName, String podUid) {
    expectReview(authenticated, user, podName, podUid, List.of("nodemesh-ca"));
  }

  private static void expectReview(
      boolean authenticated, String user, String podName, String podUid, List<String> audiences) {
    TokenReviewBuilder b =
        new TokenReviewBuilder()
            .withNewStatus()
            .withAuthenticated(authenticated)
            .withAudiences(audiences)
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
