package dev.nodemesh.control.ca;

/**
 * Tells which node a certificate request comes from, by the bearer token in its call metadata. May
 * block (a TokenReview is an HTTP call): the certificate service calls it on gRPC's application
 * executor, never on the control plane's own thread.
 */
public interface NodeAuthenticator {

  /**
   * The name of the node whose proxy holds {@code token}.
   *
   * @throws AuthenticationException when the token proves no node (the caller answers
   *     UNAUTHENTICATED)
   */
  String nodeOf(String token) throws AuthenticationException;

  /** For logs. */
  String describe();
}
