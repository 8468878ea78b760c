package dev.nodemesh.control.ca;

import dev.nodemesh.api.ca.v1.CertificateServiceGrpc;
import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import dev.nodemesh.api.ca.v1.WorkloadRef;
import dev.nodemesh.api.config.v1.Workload;
import dev.nodemesh.model.identity.Pem;
import dev.nodemesh.model.identity.SpiffeId;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.ServerServiceDefinition;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import org.bouncycastle.pkcs.PKCS10CertificationRequest;
import org.jspecify.annotations.Nullable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code nodemesh.ca.v1.CertificateService}: authenticates the calling node by the bearer token in
 * its metadata, looks the workload up in what the control plane last pushed, refuses it unless it
 * is scheduled on that node (and its uid matches), and signs the CSR for the identity derived from
 * the workload. Every refusal is logged with the node, the workload and the reason, and counted.
 *
 * <p>Runs on gRPC's application executor (the authenticator may block on the API server); the
 * workload lookup reads an immutable snapshot and never waits for the control plane's thread.
 */
public final class CertificateService extends CertificateServiceGrpc.CertificateServiceImplBase {
  private static final Logger log = LoggerFactory.getLogger(CertificateService.class);
  static final Metadata.Key<String> AUTHORIZATION =
      Metadata.Key.of("authorization", Metadata.ASCII_STRING_MARSHALLER);
  private static final Context.Key<String> TOKEN = Context.key("nodemesh-bearer-token");
  private static final String BEARER = "bearer ";

  private final CertificateAuthority ca;
  private final NodeAuthenticator authenticator;
  private final WorkloadDirectory workloads;
  private final CaMetrics metrics;

  public CertificateService(
      CertificateAuthority ca,
      NodeAuthenticator authenticator,
      WorkloadDirectory workloads,
      CaMetrics metrics) {
    this.ca = ca;
    this.authenticator = authenticator;
    this.workloads = workloads;
    this.metrics = metrics;
  }

  /** The service with the interceptor that lifts the bearer token out of the metadata. */
  public ServerServiceDefinition definition() {
    return ServerInterceptors.intercept(this, new TokenInterceptor());
  }

  @Override
  public void createCertificate(
      CreateCertificateRequest request, StreamObserver<CreateCertificateResponse> response) {
    WorkloadRef ref = request.getWorkload();
    String what = ref.getNamespace() + "/" + ref.getName();
    String token = TOKEN.get();
    if (token == null || token.isEmpty()) {
      refuse(response, Refusal.UNAUTHENTICATED, "?", what, "no bearer token");
      return;
    }
    String node;
    try {
      node = authenticator.nodeOf(token);
    } catch (AuthenticationException e) {
      refuse(response, Refusal.UNAUTHENTICATED, "?", what, e.getMessage());
      return;
    } catch (RuntimeException e) {
      // The authenticator's own failure (an API server away): retryable, not the caller's fault.
      log.warn("CA: authenticating a node failed: {}", e.toString());
      response.onError(Status.UNAVAILABLE.withDescription("cannot authenticate now").asException());
      return;
    }
    if (ref.getNamespace().isEmpty() || ref.getName().isEmpty() || request.getCsr().isEmpty()) {
      refuse(response, Refusal.INVALID_REQUEST, node, what, "workload and csr are required");
      return;
    }
    Workload w = workloads.find(ref.getNamespace(), ref.getName());
    if (w == null) {
      refuse(response, Refusal.UNKNOWN_WORKLOAD, node, what, "no such workload");
      return;
    }
    if (!ref.getUid().isEmpty() && !ref.getUid().equals(w.getUid())) {
      refuse(response, Refusal.UID_MISMATCH, node, what, "uid " + ref.getUid() + " is gone");
      return;
    }
    if (!node.equals(w.getNode())) {
      refuse(
          response,
          Refusal.OTHER_NODE,
          node,
          what,
          "scheduled on " + (w.getNode().isEmpty() ? "no node" : w.getNode()));
      return;
    }
    SpiffeId id =
        new SpiffeId(
            ca.settings().trustDomain(),
            w.getNamespace(),
            w.getServiceAccount().isEmpty() ? "default" : w.getServiceAccount());
    List<X509Certificate> chain;
    try {
      PKCS10CertificationRequest csr = Pem.csr(request.getCsr());
      Duration ttl = Duration.ofSeconds(request.getTtl().getSeconds(), request.getTtl().getNanos());
      chain = ca.sign(csr, id, ttl);
    } catch (IOException | InvalidCsrException e) {
      refuse(response, Refusal.BAD_CSR, node, what, e.getMessage());
      return;
    }
    CreateCertificateResponse.Builder out = CreateCertificateResponse.newBuilder();
    for (X509Certificate c : chain) {
      out.addCertChain(Pem.encode(c));
    }
    for (X509Certificate r : ca.trustBundle()) {
      out.addTrustBundle(Pem.encode(r));
    }
    metrics.issued();
    log.debug(
        "CA: issued {} (serial {}) to node {} for {} until {}",
        id,
        chain.get(0).getSerialNumber().toString(16),
        node,
        what,
        chain.get(0).getNotAfter().toInstant());
    response.onNext(out.build());
    response.onCompleted();
  }

  private void refuse(
      StreamObserver<CreateCertificateResponse> response,
      Refusal reason,
      String node,
      String workload,
      @Nullable String detail) {
    metrics.refused(reason);
    log.warn(
        "CA: refused a certificate for {} to node {}: {} ({})",
        workload,
        node,
        reason.label(),
        detail);
    // The caller learns the category, not the detail (which names other nodes).
    response.onError(
        Status.fromCode(reason.code())
            .withDescription(reason.label().replace('_', ' '))
            .asException());
  }

  /** Puts the {@code authorization: Bearer <token>} value into the call's context. */
  private static final class TokenInterceptor implements ServerInterceptor {
    @Override
    public <Q, R> ServerCall.Listener<Q> interceptCall(
        ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
      String token = bearerToken(headers);
      return Contexts.interceptCall(Context.current().withValue(TOKEN, token), call, headers, next);
    }
  }

  /**
   * The token of an {@code authorization: Bearer <token>} header, or "" when there is none: the
   * node credential, on CA calls and on the xDS stream alike.
   */
  public static String bearerToken(Metadata headers) {
    String value = headers.get(AUTHORIZATION);
    if (value != null && value.toLowerCase(Locale.ROOT).startsWith(BEARER)) {
      return value.substring(BEARER.length()).strip();
    }
    return "";
  }
}
