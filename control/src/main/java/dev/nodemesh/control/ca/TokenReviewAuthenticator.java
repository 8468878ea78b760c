package dev.nodemesh.control.ca;

import io.fabric8.kubernetes.api.model.Pod;
import io.fabric8.kubernetes.api.model.authentication.TokenReview;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewBuilder;
import io.fabric8.kubernetes.api.model.authentication.TokenReviewStatus;
import io.fabric8.kubernetes.api.model.authentication.UserInfo;
import io.fabric8.kubernetes.client.KubernetesClient;
import io.fabric8.kubernetes.client.KubernetesClientException;
import java.time.Clock;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.jspecify.annotations.Nullable;

/**
 * Node authentication on a cluster: the proxy's service-account token, checked with the TokenReview
 * API. The token must be authenticated, belong to {@code
 * system:serviceaccount:<proxyNamespace>:<proxyServiceAccount>}, and be bound to a pod (a projected
 * or a default token on Kubernetes 1.22+ carries {@code authentication.kubernetes.io/pod-name}, and
 * {@code pod-uid}, in the user's extra); that pod, read from the API in the proxy's namespace, must
 * still exist with the same uid, and its {@code spec.nodeName} is the caller's node.
 *
 * <p>A token that proves nothing is an {@link AuthenticationException}; an API call that fails (the
 * API server away, RBAC missing) is an {@link IllegalStateException}, which the CA and the xDS
 * server answer with UNAVAILABLE, so the proxy retries instead of being told it is unknown.
 *
 * <p>When audiences are configured, the review's {@code status.audiences} must name one of them: an
 * API server (or webhook authenticator) that ignores {@code spec.audiences} would otherwise let a
 * token minted for another service in.
 *
 * <p>RBAC: create tokenreviews (cluster scope), get pods in the proxy's namespace. An answer is
 * cached ({@link TokenReviewCache}: until the token's {@code exp}, at most {@link #MAX_AGE}; a
 * refusal for {@link #REFUSAL_AGE}), so a proxy that reconnects, or a caller that repeats one token
 * in a loop, does not turn each gRPC call into two API requests.
 */
public final class TokenReviewAuthenticator implements NodeAuthenticator {
  static final String POD_NAME = "authentication.kubernetes.io/pod-name";
  static final String POD_UID = "authentication.kubernetes.io/pod-uid";

  /** How long an accepted token is trusted without asking again (a deleted pod is seen then). */
  public static final Duration MAX_AGE = Duration.ofMinutes(5);

  /** How long a refused token is refused without asking again. */
  public static final Duration REFUSAL_AGE = Duration.ofSeconds(10);

  /** Distinct tokens kept; a node has one, so this is many clusters' worth of nodes. */
  public static final int CACHE_CAPACITY = 10_000;

  private final KubernetesClient client;
  private final String proxyNamespace;
  private final String proxyServiceAccount;
  private final List<String> audiences;
  private final TokenReviewCache cache;

  /**
   * @param audiences the audiences the token must be valid for; empty means the API server's own
   */
  public TokenReviewAuthenticator(
      KubernetesClient client,
      String proxyNamespace,
      String proxyServiceAccount,
      List<String> audiences) {
    this(client, proxyNamespace, proxyServiceAccount, audiences, Clock.systemUTC(), MAX_AGE);
  }

  /** With the cache's clock and the longest time an answer is kept (tests). */
  public TokenReviewAuthenticator(
      KubernetesClient client,
      String proxyNamespace,
      String proxyServiceAccount,
      List<String> audiences,
      Clock clock,
      Duration maxAge) {
    this.client = client;
    this.proxyNamespace = proxyNamespace;
    this.proxyServiceAccount = proxyServiceAccount;
    this.audiences = List.copyOf(audiences);
    this.cache = new TokenReviewCache(clock, maxAge, REFUSAL_AGE, CACHE_CAPACITY);
  }

  @Override
  public String nodeOf(String token) throws AuthenticationException {
    TokenReviewCache.Answer cached = cache.get(token);
    if (cached != null) {
      if (cached.node() != null) {
        return cached.node();
      }
      throw new AuthenticationException(String.valueOf(cached.refusal()));
    }
    String node;
    try {
      node = review(token);
    } catch (AuthenticationException e) {
      cache.refused(token, String.valueOf(e.getMessage()));
      throw e;
    }
    cache.accepted(token, node);
    return node;
  }

  /** Cached answers held now (tests, metrics). */
  int cached() {
    return cache.size();
  }

  private String review(String token) throws AuthenticationException {
    TokenReview review =
        new TokenReviewBuilder()
            .withNewSpec()
            .withToken(token)
            .withAudiences(audiences.isEmpty() ? null : audiences)
            .endSpec()
            .build();
    TokenReviewStatus status;
    try {
      status = client.authentication().v1().tokenReviews().create(review).getStatus();
    } catch (KubernetesClientException e) {
      // A bad token is a 201 with authenticated=false; a failed create (API server away, RBAC
      // missing) says nothing about the caller, so it is the callers' UNAVAILABLE, retried.
      throw new IllegalStateException("TokenReview failed: " + e.getMessage(), e);
    }
    if (status == null || !Boolean.TRUE.equals(status.getAuthenticated())) {
      throw new AuthenticationException(
          "token not authenticated" + (status == null ? "" : ": " + status.getError()));
    }
    if (!audiences.isEmpty()) {
      List<String> granted = status.getAudiences() == null ? List.of() : status.getAudiences();
      if (granted.stream().noneMatch(audiences::contains)) {
        throw new AuthenticationException(
            "token is not for audience " + audiences + " (review says " + granted + ")");
      }
    }
    UserInfo user = status.getUser();
    String expected = "system:serviceaccount:" + proxyNamespace + ":" + proxyServiceAccount;
    if (user == null || !expected.equals(user.getUsername())) {
      throw new AuthenticationException(
          "token of " + (user == null ? "nobody" : user.getUsername()) + ", not " + expected);
    }
    String podName = extra(user, POD_NAME);
    if (podName == null) {
      throw new AuthenticationException("token is not bound to a pod (no " + POD_NAME + ")");
    }
    Pod pod;
    try {
      pod = client.pods().inNamespace(proxyNamespace).withName(podName).get();
    } catch (KubernetesClientException e) {
      throw new IllegalStateException("reading pod " + podName + ": " + e.getMessage(), e);
    }
    if (pod == null) {
      throw new AuthenticationException("proxy pod " + proxyNamespace + "/" + podName + " is gone");
    }
    String podUid = extra(user, POD_UID);
    if (podUid != null && !podUid.equals(pod.getMetadata().getUid())) {
      throw new AuthenticationException("token of an earlier pod named " + podName);
    }
    String node = pod.getSpec() == null ? null : pod.getSpec().getNodeName();
    if (node == null || node.isEmpty()) {
      throw new AuthenticationException("proxy pod " + podName + " is not on a node");
    }
    return node;
  }

  private static @Nullable String extra(UserInfo user, String key) {
    Map<String, List<String>> extra = user.getExtra();
    List<String> values = extra == null ? null : extra.get(key);
    return values == null || values.size() != 1 ? null : values.get(0);
  }

  @Override
  public String describe() {
    return "TokenReview of system:serviceaccount:" + proxyNamespace + ":" + proxyServiceAccount;
  }
}
