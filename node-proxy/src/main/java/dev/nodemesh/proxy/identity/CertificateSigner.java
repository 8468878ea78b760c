package dev.nodemesh.proxy.identity;

import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import java.util.concurrent.CompletionStage;

/** Asks the CA to sign: the production one is {@link GrpcCertificateSigner}. */
@FunctionalInterface
public interface CertificateSigner {

  /** Completes with the CA's answer, or exceptionally (a gRPC status, a transport error). */
  CompletionStage<CreateCertificateResponse> sign(CreateCertificateRequest request);
}
