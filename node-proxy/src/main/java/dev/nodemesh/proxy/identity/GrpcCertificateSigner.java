package dev.nodemesh.proxy.identity;

import dev.nodemesh.api.ca.v1.CertificateServiceGrpc;
import dev.nodemesh.api.ca.v1.CreateCertificateRequest;
import dev.nodemesh.api.ca.v1.CreateCertificateResponse;
import io.grpc.Channel;
import io.grpc.Status;
import io.grpc.stub.StreamObserver;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The CA over gRPC ({@code nodemesh.ca.v1.CertificateService}), the node's token sent as {@code
 * authorization: Bearer <token>} on every call. The token is read from its file on every call, so a
 * rotated Kubernetes projected token is picked up without a restart.
 */
public final class GrpcCertificateSigner implements CertificateSigner {
  private static final long DEADLINE_SECONDS = 15;

  private final CertificateServiceGrpc.CertificateServiceStub stub;

  /** The token goes over TLS (or in-process) only; see {@link NodeToken}. */
  public GrpcCertificateSigner(Channel channel, Supplier<String> token) {
    this(channel, token, false);
  }

  public GrpcCertificateSigner(Channel channel, Supplier<String> token, boolean allowPlaintext) {
    this.stub =
        CertificateServiceGrpc.newStub(channel)
            .withCallCredentials(new NodeToken(token, allowPlaintext));
  }

  /** The token in {@code file} (surrounding whitespace dropped), read on each call. */
  public static Supplier<String> tokenFile(Path file) {
    return NodeToken.read(file);
  }

  @Override
  public CompletionStage<CreateCertificateResponse> sign(CreateCertificateRequest request) {
    CompletableFuture<CreateCertificateResponse> result = new CompletableFuture<>();
    stub.withDeadlineAfter(DEADLINE_SECONDS, TimeUnit.SECONDS)
        .createCertificate(
            request,
            new StreamObserver<>() {
              @Override
              public void onNext(CreateCertificateResponse value) {
                result.complete(value);
              }

              @Override
              public void onError(Throwable t) {
                result.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                if (!result.isDone()) {
                  result.completeExceptionally(
                      Status.INTERNAL.withDescription("no response").asException());
                }
              }
            });
    return result;
  }
}
